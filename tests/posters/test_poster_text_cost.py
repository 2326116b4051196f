"""Text layout costs work linear in the text's length (issue 13): counted, never timed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import ImageFont

from posters.glyphs import clean_text
from posters.text import _Line, _Measure, glyph_metrics, layout_text


class _Counter:
    def __init__(self) -> None:
        self.calls = 0
        self.chars = 0


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Counter]:
    """Counts every font measurement (getbbox/getlength) and the characters it measured."""
    counter = _Counter()
    for name in ("getbbox", "getlength"):
        original = getattr(ImageFont.FreeTypeFont, name)

        def wrapper(self: ImageFont.FreeTypeFont, text: str, *a: object, _o=original, **k: object):  # type: ignore[no-untyped-def]
            counter.calls += 1
            counter.chars += len(text)
            return _o(self, text, *a, **k)

        monkeypatch.setattr(ImageFont.FreeTypeFont, name, wrapper)
    yield counter


def _layout_cost(counter: _Counter, text: str, size: int, width: float) -> tuple[int, int]:
    layout_text.cache_clear()
    glyph_metrics.cache_clear()
    before = (counter.calls, counter.chars)
    layout_text(text, size=size, bold=False, width=width, max_lines=100, line_height=2)
    return counter.calls - before[0], counter.chars - before[1]


@pytest.mark.parametrize(
    ("unit", "size", "width"),
    [("a", 1, 750.0), ("好", 1, 750.0), ("ab 好, ", 1, 750.0), ("好友参与", 12, 300.0)],
)
def test_8kb_of_text_lays_out_in_linear_work(counted: _Counter, unit: str, size: int,
                                              width: float) -> None:  # fmt: skip
    text = (unit * 16_384)[:8192]
    clean_text(text + text)  # glyph checks are cached per character: keep them out of the count
    calls, chars = _layout_cost(counted, text, size, width)
    calls2, chars2 = _layout_cost(counted, (text * 2), size, width)
    # Quadratic wrapping measured each line again for every added character: at fontSize 1
    # the whole 8 KB is one line, so that was ~33 million characters measured.
    assert chars <= 6 * len(text), (calls, chars)
    assert chars2 <= 2.5 * chars + 64, (chars, chars2)  # doubling the text about doubles it
    assert calls2 <= 2.5 * calls + 64, (calls, calls2)


@settings(max_examples=150, deadline=None)
@given(
    # CJK, Latin (kerned pairs), a fallback face's symbols, colour emoji and the replacement.
    st.text(alphabet="好友参与活动，。AVWToy ij.-'!「」" + "𝐀☐⇶😀🎉\U000f0000", min_size=1,
            max_size=40),  # fmt: skip
    st.sampled_from([1, 7, 13, 28, 46]),
    st.booleans(),
    st.sampled_from([0.0, 3.0, -1.5]),
)
def test_incremental_width_equals_measuring_the_whole_line(text: str, size: int, bold: bool,
                                                           spacing: float) -> None:  # fmt: skip
    measure = _Measure(size, bold, spacing)
    text = clean_text(text)[0]
    line = _Line(measure)
    for i, ch in enumerate(text):
        assert line.width_with(ch) == measure(text[: i + 1])
        line.extend(ch)
    assert line.width_with("") == measure(text)
