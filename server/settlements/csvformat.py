"""CSV cells of a settlement line, exactly as ``csv.writer`` would write them (no I/O).

A settlement is a dated statement: once drafted its lines do not change but for the transfer
reference. So each line's cells are rendered once, when the draft is made, and stored; an
export then only reads and joins them (``csv_chunks``). Text that a spreadsheet would run as
a formula (``= + - @``, tab, CR) gets a leading ``'`` (CSV injection); amounts appear in fen
and in yuan with two decimals, formatted from the integer, never through a float.
"""

from __future__ import annotations

__all__ = ["FORMULA_START", "escape_cell", "line_cells", "text_cell", "yuan"]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CENTS = [f"{n:02d}" for n in range(100)]
_NEEDS_QUOTES = frozenset(',"\r\n')


def escape_cell(text: str | None) -> str:
    """The CSV-injection escape alone (also used for XLSX-free readers)."""
    if not text:
        return ""
    return "'" + text if text.startswith(FORMULA_START) else text


def yuan(fen: int) -> str:
    """``12345`` -> ``"123.45"``, ``-5`` -> ``"-0.05"``."""
    if fen >= 0:
        return f"{fen // 100}.{_CENTS[fen % 100]}"
    fen = -fen
    return f"-{fen // 100}.{_CENTS[fen % 100]}"


def text_cell(value: str | None) -> str:
    """:func:`escape_cell`, then csv.writer's minimal quoting."""
    value = escape_cell(value)
    if _NEEDS_QUOTES.isdisjoint(value):
        return value
    return '"' + value.replace('"', '""') + '"'


def line_cells(distributor_id: str, nickname: str | None, amounts: tuple[int, ...]) -> str:
    """Every cell of a line but the transfer reference, comma-joined."""
    money = ",".join(f"{a},{yuan(a)}" for a in amounts)
    return f"{text_cell(distributor_id)},{text_cell(nickname)},{money}"
