"""Small charts as inline SVG: they need no script, no library and no file, and stay sharp when zoomed.

Each function takes the numbers the page also shows in its tables and returns one `<svg>` element; a
`<title>` on every bar or line gives the exact value on hover.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

BAR_COLOUR = "#3b7dd8"
SERIES_COLOURS = ("#3b7dd8", "#e6194b", "#3cb44b", "#f58231", "#911eb4", "#42d4f4")
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _label(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bar_chart(
    labels: Sequence[str], values: Sequence[float | None], notes: Sequence[str], maximum: float = 100.0
) -> str:
    """Horizontal bars, one per label, scaled to `maximum`; `notes` are written after each bar."""
    row, label_width, bar_width, note_width = 18, 140, 190, 110
    width, height = label_width + bar_width + note_width, row * len(labels) + 4
    parts = [f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" {FONT}>']
    for index, (label, value, note) in enumerate(zip(labels, values, notes, strict=True)):
        y = 2 + index * row
        length = 0.0 if value is None else bar_width * max(0.0, min(value, maximum)) / maximum
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 12}" text-anchor="end">{escape(_label(label, 23))}</text>'
            f'<rect x="{label_width}" y="{y + 2}" width="{bar_width}" height="{row - 5}" fill="#eef1f5"/>'
            f'<rect x="{label_width}" y="{y + 2}" width="{length:.1f}" height="{row - 5}" fill="{BAR_COLOUR}">'
            f"<title>{escape(label)}: {escape(note)}</title></rect>"
            f'<text x="{label_width + bar_width + 6}" y="{y + 12}">{escape(note)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def histogram_chart(edges: Sequence[float], counts: Sequence[int], marker: float | None = None) -> str:
    """Vertical bars of `counts` between consecutive `edges`, with an optional dashed line at `marker`."""
    width, height, left, bottom, top = 460, 170, 44, 22, 8
    plot_width, plot_height = width - left - 8, height - bottom - top
    tallest = max(max(counts, default=0), 1)
    span = edges[-1] - edges[0] or 1.0

    def x_of(value: float) -> float:
        return left + plot_width * (value - edges[0]) / span

    parts = [f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" {FONT}>']
    for start, end, count in zip(edges[:-1], edges[1:], counts, strict=True):
        bar_height = plot_height * count / tallest
        parts.append(
            f'<rect x="{x_of(start) + 0.5:.1f}" y="{top + plot_height - bar_height:.1f}" '
            f'width="{max(x_of(end) - x_of(start) - 1, 0.5):.1f}" height="{bar_height:.1f}" fill="{BAR_COLOUR}">'
            f"<title>IoU {start:g}-{end:g}: {count:,}</title></rect>"
        )
    base = top + plot_height
    parts.append(f'<line x1="{left}" y1="{base}" x2="{left + plot_width}" y2="{base}" stroke="#888"/>')
    for value in (edges[0], (edges[0] + edges[-1]) / 2, edges[-1]):
        parts.append(f'<text x="{x_of(value):.1f}" y="{base + 15}" text-anchor="middle">{value:g}</text>')
    parts.append(f'<text x="{left - 6}" y="{top + 10}" text-anchor="end">{tallest:,}</text>')
    parts.append(f'<text x="{left - 6}" y="{base}" text-anchor="end">0</text>')
    if marker is not None:
        x = x_of(marker)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{base}" stroke="#e6194b" stroke-dasharray="4 3"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def line_chart(xs: Sequence[float], series: dict[str, Sequence[float | None]], title: str) -> str:
    """One line per series over `xs` with a legend; missing values break nothing (they are skipped)."""
    width, height, left, bottom, top = 460, 190, 48, 34, 22
    plot_width, plot_height = width - left - 10, height - bottom - top
    values = [value for line in series.values() for value in line if value is not None]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high == low:
        low, high = low - 1, high + 1
    x_low, x_high = (min(xs), max(xs)) if xs else (0, 1)
    x_span = (x_high - x_low) or 1

    def point(x: float, y: float) -> str:
        return f"{left + plot_width * (x - x_low) / x_span:.1f},{top + plot_height * (high - y) / (high - low):.1f}"

    parts = [f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" {FONT}>']
    parts.append(f'<text x="{left}" y="13" font-weight="600">{escape(title)}</text>')
    base = top + plot_height
    parts.append(f'<rect x="{left}" y="{top}" width="{plot_width}" height="{plot_height}" fill="none" stroke="#ccc"/>')
    parts.append(f'<text x="{left - 5}" y="{top + 9}" text-anchor="end">{high:.4g}</text>')
    parts.append(f'<text x="{left - 5}" y="{base}" text-anchor="end">{low:.4g}</text>')
    parts.append(f'<text x="{left}" y="{base + 14}" text-anchor="middle">{x_low:g}</text>')
    parts.append(f'<text x="{left + plot_width}" y="{base + 14}" text-anchor="middle">{x_high:g}</text>')
    for index, (name, line) in enumerate(series.items()):
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        points = [point(x, y) for x, y in zip(xs, line, strict=True) if y is not None]
        parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" stroke-width="2">')
        parts.append(f"<title>{escape(name)}</title></polyline>")
        for x, y in zip(xs, line, strict=True):
            if y is None:
                continue
            cx, cy = point(x, y).split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{colour}">')
            parts.append(f"<title>{escape(name)}, epoch {x:g}: {y:.4g}</title></circle>")
        legend_x = left + 8 + 150 * index
        parts.append(f'<rect x="{legend_x}" y="{base + 22}" width="10" height="3" fill="{colour}"/>')
        parts.append(f'<text x="{legend_x + 14}" y="{base + 27}">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
