"""Font resolution order: LIEBIAN_FONT_PATH, a CJK face from fontconfig, the pip font."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from posters import FontNotFoundError, PosterData, default_template, render_poster
from posters import fonts as fonts_module
from posters.fonts import ENV_VAR, PIP_FONT, FontFace, find_fonts, load_font

PIP_FONT_PATH = Path(sys.prefix) / PIP_FONT
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def _no_fontconfig(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)


def test_explicit_env_var_wins(fresh_fonts: pytest.MonkeyPatch, tmp_path: Path) -> None:
    copy = tmp_path / "brand.otf"
    copy.symlink_to(PIP_FONT_PATH)
    fresh_fonts.setenv(ENV_VAR, str(copy))
    assert find_fonts().regular == FontFace(str(copy))
    assert find_fonts().bold is None


def test_env_var_with_collection_index(fresh_fonts: pytest.MonkeyPatch) -> None:
    fresh_fonts.setenv(ENV_VAR, f"{PIP_FONT_PATH}#0")
    assert find_fonts().regular == FontFace(str(PIP_FONT_PATH), 0)


def test_env_var_pointing_nowhere_is_an_error(fresh_fonts: pytest.MonkeyPatch) -> None:
    fresh_fonts.setenv(ENV_VAR, "/nonexistent/font.otf")
    with pytest.raises(FontNotFoundError, match="no such file"):
        find_fonts()


@pytest.mark.skipif(not DEJAVU.is_file(), reason="needs DejaVu Sans")
def test_env_var_font_without_chinese_is_an_error(fresh_fonts: pytest.MonkeyPatch) -> None:
    fresh_fonts.setenv(ENV_VAR, str(DEJAVU))
    with pytest.raises(FontNotFoundError, match="no Chinese glyphs"):
        find_fonts()


def test_fontconfig_fallback_without_cjk_is_skipped(fresh_fonts: pytest.MonkeyPatch) -> None:
    """fontconfig answers with some Latin face when no CJK font is installed: not good enough."""
    fresh_fonts.delenv(ENV_VAR, raising=False)
    if DEJAVU.is_file():
        fresh_fonts.setattr(fonts_module, "_fc_match", lambda pattern: FontFace(str(DEJAVU)))
    assert find_fonts().regular == FontFace(str(PIP_FONT_PATH))


def test_fontconfig_cjk_face_is_preferred(fresh_fonts: pytest.MonkeyPatch, tmp_path: Path) -> None:
    system = tmp_path / "NotoSansCJK-Regular.ttc"
    system.symlink_to(PIP_FONT_PATH)
    fresh_fonts.delenv(ENV_VAR, raising=False)
    fresh_fonts.setattr(fonts_module, "_fc_match", lambda pattern: FontFace(str(system)))
    # fc-match answers the same face for bold: no real bold face, so bold is synthesised.
    fonts = find_fonts()
    assert (fonts.regular, fonts.bold, fonts.fallbacks) == (FontFace(str(system)), None, ())
    assert load_font(40, bold=True)[1] == 1


@pytest.mark.skipif(shutil.which("fc-match") is None, reason="needs fontconfig")
def test_real_fc_match_output_is_parsed() -> None:
    face = fonts_module._fc_match("sans-serif")
    expected = subprocess.run(["fc-match", "-f", "%{file}", "sans-serif"],
                              capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert face is not None and face.path == expected


def test_no_font_anywhere_names_the_fixes(fresh_fonts: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fresh_fonts.delenv(ENV_VAR, raising=False)
    _no_fontconfig(fresh_fonts)
    fresh_fonts.setattr(sys, "prefix", str(tmp_path))
    with pytest.raises(FontNotFoundError) as caught:
        find_fonts()
    message = str(caught.value)
    assert "pip install cvttf-NotoSansCJK-Regular" in message
    assert "fonts-noto-cjk" in message and ENV_VAR in message
    with pytest.raises(FontNotFoundError):
        render_poster(default_template(), PosterData(nickname="x", link="https://x.cn"))


def test_fonts_are_loaded_once_per_size() -> None:
    assert load_font(31)[0] is load_font(31)[0]
    assert load_font(31)[0] is not load_font(32)[0]
    assert load_font(31, bold=True) == (load_font(31)[0], 1)


SERIF = Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf")


@pytest.mark.skipif(shutil.which("fc-list") is None or not SERIF.is_file(),
                    reason="needs fontconfig and DejaVu Serif")  # fmt: skip
def test_font_family_picks_the_first_installed_family() -> None:
    from posters.glyphs import FAMILY, face_slot
    from posters.text import layout_text

    face = fonts_module.family_face("'No Such Font', \"DejaVu Serif\", serif")
    assert face is not None and Path(face.path).name.startswith("DejaVuSerif")
    assert fonts_module.family_face("sans-serif") is None  # generic: the default chain
    assert fonts_module.family_face("No Such Font") is None
    assert face_slot("A", family=face) == FAMILY
    assert face_slot("中", family=face) == 0  # DejaVu has no CJK: the chain goes on
    serif = layout_text("Wide 中文", size=40, bold=False, width=600, max_lines=1,
                        line_height=56, font_family="DejaVu Serif")  # fmt: skip
    plain = layout_text("Wide 中文", size=40, bold=False, width=600, max_lines=1,
                        line_height=56)  # fmt: skip
    assert [r.slot for r in serif.runs[0]] == [FAMILY, 0]
    assert serif.widths != plain.widths
