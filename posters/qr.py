"""QR codes drawn straight onto the canvas as a module mask.

The mask pattern is fixed: qrcode's search over the eight patterns is ~85% of the cost of
making a code (about 5 ms -> 0.7 ms), and any pattern decodes fine in practice. Modules are
whole pixels (nearest-neighbour scaling) and the code is centred in its box with a quiet zone
of at least one module of the background colour, which the caller paints.
"""

from __future__ import annotations

from functools import lru_cache

import qrcode
import qrcode.util
from PIL import Image

from posters.colors import RGBA
from posters.errors import PosterDataError

__all__ = ["QR_MASK_PATTERN", "draw_qr", "qr_mask"]

QR_MASK_PATTERN = 0
QUIET_MODULES = 1
_LEVEL = qrcode.constants.ERROR_CORRECT_M  # 15% damage tolerated


def _version(size: int) -> int:
    """Smallest version holding one byte-mode segment of ``size`` bytes at level M."""
    limits = qrcode.util.BIT_LIMIT_TABLE[_LEVEL]
    for version in range(1, 41):
        count_bits = 8 if version < 10 else 16
        if 4 + count_bits + 8 * size <= limits[version]:
            return version
    raise PosterDataError(f"QR content of {size} bytes is too long (limit 2331 bytes)")


@lru_cache(maxsize=256)
def _modules(content: str) -> tuple[int, bytes]:
    """Side length in modules and one byte per module (1 = dark), row by row.

    One byte-mode segment with a computed version: qrcode's mode optimiser and best_fit
    encode the data twice, and URLs gain nothing from mixed modes (lowercase).
    """
    data = content.encode("utf-8")
    code = qrcode.QRCode(
        version=_version(len(data)), error_correction=_LEVEL, border=0,
        mask_pattern=QR_MASK_PATTERN,
    )  # fmt: skip
    code.add_data(qrcode.util.QRData(data, mode=qrcode.util.MODE_8BIT_BYTE))
    code.make(fit=False)
    matrix: list[list[bool]] = code.get_matrix()
    return len(matrix), bytes(1 if cell else 0 for row in matrix for cell in row)


def _layout(count: int, side: int) -> tuple[int, int]:
    """Pixel size of the module area and its offset in a ``side`` px box."""
    module = side // (count + 2 * QUIET_MODULES)
    # A box under one pixel per module still gets a (blurry, likely unreadable) code.
    size = module * count if module >= 1 else max(1, side - 2)
    return size, (side - size) // 2


def _clip(canvas: Image.Image, x: int, y: int, size: int) -> tuple[int, int, int, int] | None:
    """The part of the ``size`` px square at (x, y) on the canvas, in the square's pixels."""
    x0, y0 = max(0, -x), max(0, -y)
    x1, y1 = min(size, canvas.width - x), min(size, canvas.height - y)
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


def _scaled(small: Image.Image, size: int, part: tuple[int, int, int, int]) -> Image.Image:
    """``part`` of ``small`` scaled to ``size`` px (nearest), computing only that part."""
    x0, y0, x1, y1 = part
    if part == (0, 0, size, size):
        return small.resize((size, size), Image.Resampling.NEAREST)
    k = small.width / size
    box = (x0 * k, y0 * k, x1 * k, y1 * k)
    return small.resize((x1 - x0, y1 - y0), Image.Resampling.NEAREST, box=box)


def qr_mask(content: str, side: int) -> tuple[Image.Image, int]:
    """An L mask (255 = dark module) of at most ``side`` px and its offset inside the box."""
    count, cells = _modules(content)
    size, offset = _layout(count, side)
    small = Image.frombytes("L", (count, count), cells).point(lambda v: 255 if v else 0)
    return small.resize((size, size), Image.Resampling.NEAREST), offset


def draw_qr(
    canvas: Image.Image,
    content: str,
    box: tuple[int, int, int],
    fg: RGBA,
    under: RGBA | None,
    radius: int = 0,
) -> None:
    """Draw the QR code for ``content`` in the square ``box`` = (left, top, side).

    ``under`` is the opaque colour already painted beneath the code, if there is one: then
    the code is pasted as a two-colour image, twice as fast as painting through a mask,
    provided the module square stays inside the box's rounded corners of ``radius``.
    """
    left, top, side = box
    if side <= 0:
        return
    count, cells = _modules(content)
    size, offset = _layout(count, side)
    x, y = left + offset, top + offset
    part = _clip(canvas, x, y, size)  # only the part on the canvas is ever scaled up
    if part is None:
        return
    at = (x + part[0], y + part[1])
    if under is not None and under[3] == 255 and fg[3] == 255 and offset >= 0.3 * radius:
        small = Image.frombytes("P", (count, count), cells)
        small.putpalette((*under[:3], *fg[:3]))
        canvas.paste(_scaled(small, size, part).convert("RGB"), at)
        return
    small = Image.frombytes("L", (count, count), cells).point(lambda v: 255 if v else 0)
    mask = _scaled(small, size, part)
    if fg[3] < 255:
        alpha = fg[3]
        mask = mask.point(lambda v: v * alpha // 255)
    canvas.paste(fg[:3], at, mask)
