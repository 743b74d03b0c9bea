"""The check-up's plots as PNG images, drawn with NumPy and written with zlib (no Qt, no imaging library).

Bars, a curve or a heatmap on a white canvas with a frame; red marks what the finding is about. Bars and
curves carry their value range on the left (digits in a 3 × 5 pixel font); each plot's caption says what the
axes are (the report prints it under the image).
"""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np

WIDTH, HEIGHT, MARGIN = 560, 220, 12
LABELS = 64                    # room on the left for the value range of bars and curves
# digits and the characters of a number, 3 × 5 pixels, one row of bits per line (4 = left, 1 = right)
FONT = {"0": (7, 5, 5, 5, 7), "1": (2, 6, 2, 2, 7), "2": (7, 1, 7, 4, 7), "3": (7, 1, 7, 1, 7),
        "4": (5, 5, 7, 1, 1), "5": (7, 4, 7, 1, 7), "6": (7, 4, 7, 5, 7), "7": (7, 1, 1, 1, 1),
        "8": (7, 5, 7, 5, 7), "9": (7, 5, 7, 1, 7), ".": (0, 0, 0, 0, 2), "-": (0, 0, 7, 0, 0),
        "+": (0, 2, 7, 2, 0), "e": (0, 7, 7, 4, 7)}
FONT_SCALE = 2
WHITE, FRAME, GRID = (255, 255, 255), (90, 90, 90), (225, 225, 225)
BLUE, RED, DARK = (46, 134, 193), (214, 48, 49), (40, 40, 40)
# viridis at five stops, interpolated: 0 dark purple → 1 yellow
VIRIDIS = np.array([(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)], float)


def encode(pixels: np.ndarray) -> bytes:
    """A PNG file of an (H, W, 3) uint8 RGB image."""
    height, width, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(height))   # filter 0 on every row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def png(plot) -> bytes:
    """The PNG of a doctor.Plot."""
    canvas = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    canvas[:] = WHITE
    left = MARGIN + (LABELS if plot.kind in ("bars", "curve") else 0)
    box = (MARGIN, left, HEIGHT - MARGIN, WIDTH - MARGIN)    # top, left, bottom, right
    draw = {"bars": _bars, "curve": _curve, "heatmap": _heatmap}[plot.kind]
    draw(canvas, box, plot)
    top, left, bottom, right = box
    canvas[top, left:right + 1] = canvas[bottom, left:right + 1] = FRAME
    canvas[top:bottom + 1, left] = canvas[top:bottom + 1, right] = FRAME
    return encode(canvas)


def _text(canvas: np.ndarray, text: str, right: int, middle: int) -> None:
    """`text` (digits, . - + e) ending at column `right`, centred on row `middle`."""
    step = 4 * FONT_SCALE
    x = right - step * len(text)
    y = middle - 5 * FONT_SCALE // 2
    for character in text:
        for row, bits in enumerate(FONT.get(character, (0,) * 5)):
            for column in range(3):
                if bits & (4 >> column):
                    canvas[y + row * FONT_SCALE:y + (row + 1) * FONT_SCALE,
                           x + column * FONT_SCALE:x + (column + 1) * FONT_SCALE] = DARK
        x += step


def _number(value: float, log: bool) -> str:
    return f"{10 ** value:.0e}".replace("e-0", "e-").replace("e+0", "e") if log else f"{value:.3g}"


def _value_range(canvas, box, low: float, high: float, log: bool) -> None:
    top, left, bottom, _ = box
    _text(canvas, _number(high, log), left - 4, top + 6)
    _text(canvas, _number(low, log), left - 4, bottom - 6)


def data_uri(plot) -> str:
    return "data:image/png;base64," + base64.b64encode(png(plot)).decode("ascii")


def _scale(values: np.ndarray, log: bool) -> tuple[np.ndarray, float, float]:
    values = np.asarray(values, np.float64)
    if log:
        positive = values[values > 0]
        floor = positive.min() if positive.size else 1.0
        values = np.log10(np.where(values > 0, values, floor))
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if not log:
        low = min(low, 0.0)
    if high <= low:
        high = low + 1.0
    return values, low, high


def _y(value: float, low: float, high: float, top: int, bottom: int) -> int:
    return int(round(bottom - (value - low) / (high - low) * (bottom - top - 4) - 2))


def _threshold(canvas, box, plot, low, high) -> None:
    if plot.threshold is None:
        return
    top, left, bottom, right = box
    level = np.log10(plot.threshold) if plot.log and plot.threshold > 0 else plot.threshold
    if low <= level <= high:
        row = _y(level, low, high, top, bottom)
        canvas[row, left:right:6] = DARK
        canvas[row, left + 1:right:6] = DARK
        canvas[row, left + 2:right:6] = DARK


def _bars(canvas, box, plot) -> None:
    top, left, bottom, right = box
    values, low, high = _scale(plot.values, plot.log)
    count = max(1, len(values))
    width = (right - left - 2) / count
    base = _y(max(low, 0.0), low, high, top, bottom)
    for i, value in enumerate(values):
        x0 = left + 1 + int(i * width + (0.15 * width if width > 3 else 0))
        x1 = max(x0 + 1, left + 1 + int((i + 1) * width - (0.15 * width if width > 3 else 0)))
        level = _y(value if np.isfinite(value) else low, low, high, top, bottom)
        y0, y1 = sorted((level, base))
        red = plot.highlight is not None and bool(plot.highlight[i])
        canvas[y0:max(y1, y0 + 2), x0:x1] = RED if red else BLUE
    _threshold(canvas, box, plot, low, high)
    _value_range(canvas, box, low, high, plot.log)


def _curve(canvas, box, plot) -> None:
    top, left, bottom, right = box
    values, low, high = _scale(plot.values, plot.log)
    for decade in np.arange(np.ceil(low), np.floor(high) + 1) if plot.log else []:
        canvas[_y(decade, low, high, top, bottom), left:right:2] = GRID
    count = len(values)
    xs = left + 2 + (np.arange(count) / max(1, count - 1)) * (right - left - 4)
    ys = np.array([_y(v, low, high, top, bottom) for v in values])
    for i in range(count - 1):       # line segments, sampled densely
        steps = int(max(abs(xs[i + 1] - xs[i]), abs(ys[i + 1] - ys[i]))) + 1
        for t in np.linspace(0, 1, steps + 1):
            x, y = int(round(xs[i] + t * (xs[i + 1] - xs[i]))), int(round(ys[i] + t * (ys[i + 1] - ys[i])))
            canvas[y - 1:y + 1, x - 1:x + 1] = BLUE
    for i in range(count):            # the points, red where highlighted
        red = plot.highlight is not None and bool(plot.highlight[i])
        x, y = int(round(xs[i])), int(ys[i])
        canvas[max(top, y - 2):y + 3, max(left, x - 2):x + 3] = RED if red else BLUE
    _threshold(canvas, box, plot, low, high)
    _value_range(canvas, box, low, high, plot.log)


def _heatmap(canvas, box, plot) -> None:
    top, left, bottom, right = box
    values = np.atleast_2d(np.asarray(plot.values, np.float64))
    rows, columns = values.shape
    if rows == 0 or columns == 0:
        return
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    unit = (np.nan_to_num(values, nan=low) - low) / (high - low if high > low else 1.0)
    stops = np.linspace(0, 1, len(VIRIDIS))
    colours = np.stack([np.interp(unit, stops, VIRIDIS[:, c]) for c in range(3)], axis=-1)
    if plot.highlight is not None:       # red, with a trace of the value beneath
        marked = np.asarray(plot.highlight, bool)
        colours[marked] = 0.3 * colours[marked] + 0.7 * np.array(RED, float)
    height, width = bottom - top - 1, right - left - 1
    row_of = np.minimum(rows - 1, (np.arange(height) * rows) // height)
    column_of = np.minimum(columns - 1, (np.arange(width) * columns) // width)
    canvas[top + 1:bottom, left + 1:right] = colours[row_of][:, column_of].astype(np.uint8)
