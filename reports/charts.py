"""Charts drawn on the server as inline SVG 图表: horizontal bars, lines and stacked bars, for
pages that load no script and must read in print. Pure: numbers and labels in, SVG text out
(every label escaped). Text uses the page's font (`font-family: inherit`), so Chinese labels
render with whatever CJK font the page has; colours are few and also told apart by the legend's
words, and every chart on a page has its table under it.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

COLOURS = ("#2f6fb3", "#d9822b", "#5a9e4b", "#9b59b6", "#c0392b", "#7f8c8d")
FONT = 'font-family="inherit" font-size="12"'
Number = float | int | None


def _text_width(text: str) -> int:
    """Rough width in px of `text` at 12 px: CJK characters are square, others about half."""
    return sum(12 if ord(c) > 0x2E80 else 7 for c in text)


def _left(labels: Sequence[str]) -> int:
    """The label column: wide enough for the longest label, within bounds."""
    return min(300, max(90, 16 + max((_text_width(x) for x in labels), default=0)))


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fmt(value: float) -> str:
    return f"{value:g}"


def _scale_max(values: Sequence[Number]) -> float:
    top = max((float(v) for v in values if v is not None), default=0.0)
    return top if top > 0 else 1.0


def _open(width: int, height: int, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="{escape(title)}" class="chart">',
        f"<title>{escape(title)}</title>",
    ]


def bar_chart(title: str, labels: Sequence[str], values: Sequence[Number], *, unit: str = "") -> str:
    """One horizontal bar per label; an empty value draws no bar and says 无."""
    row, left, width = 26, _left(labels), 640
    height = max(1, len(labels)) * row + 10
    top = _scale_max(values)
    span = width - left - 70
    out = _open(width, height, title)
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = i * row + 5
        out.append(f'<text x="{left - 8}" y="{y + 16}" text-anchor="end" {FONT}>{escape(label)}</text>')
        if value is None:
            out.append(f'<text x="{left + 4}" y="{y + 16}" {FONT} fill="#777">无</text>')
            continue
        w = round(span * float(value) / top, 1)
        out.append(f'<rect x="{left}" y="{y + 3}" width="{w}" height="{row - 8}" fill="{COLOURS[0]}"/>')
        out.append(f'<text x="{left + w + 4}" y="{y + 16}" {FONT}>{escape(_fmt(float(value)) + unit)}</text>')
    out.append("</svg>")
    return "".join(out)


def _legend(names: Sequence[str], y: int) -> list[str]:
    out, x = [], 10
    for i, name in enumerate(names):
        out.append(f'<rect x="{x}" y="{y}" width="12" height="12" fill="{COLOURS[i % len(COLOURS)]}"/>')
        out.append(f'<text x="{x + 16}" y="{y + 11}" {FONT}>{escape(name)}</text>')
        x += 30 + 13 * len(name)
    return out


def line_chart(title: str, x_labels: Sequence[str], series: Sequence[tuple[str, Sequence[Number]]]) -> str:
    """One line per series over the x labels; a missing value breaks the line."""
    width, height, left, bottom, top_pad = 640, 240, 40, 50, 28
    plot_w, plot_h = width - left - 20, height - bottom - top_pad
    top = _scale_max([v for _, values in series for v in values])
    n = max(1, len(x_labels) - 1)
    out = _open(width, height, title)
    out += _legend([name for name, _ in series], 6)
    base = top_pad + plot_h
    out.append(f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" stroke="#999"/>')
    out.append(f'<text x="{left - 6}" y="{top_pad + 4}" text-anchor="end" {FONT}>{_fmt(top)}</text>')
    out.append(f'<text x="{left - 6}" y="{base}" text-anchor="end" {FONT}>0</text>')
    for i, label in enumerate(x_labels):
        x = left + (plot_w * i / n if len(x_labels) > 1 else plot_w / 2)
        out.append(f'<text x="{x:.1f}" y="{base + 18}" text-anchor="middle" {FONT}>{escape(label)}</text>')
    for s, (name, values) in enumerate(series):
        colour = COLOURS[s % len(COLOURS)]
        points: list[str] = []
        for i, value in enumerate(values):
            if value is None:
                continue
            x = left + (plot_w * i / n if len(x_labels) > 1 else plot_w / 2)
            y = base - plot_h * float(value) / top
            points.append(f"{x:.1f},{y:.1f}")
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
        if len(points) > 1:
            out.append(
                f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" stroke-width="2"'
                f' aria-label="{escape(name)}"/>'
            )
    out.append("</svg>")
    return "".join(out)


def stacked_bar_chart(title: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[int]]]) -> str:
    """One horizontal bar per label, split into the series' parts (e.g. on time / late)."""
    row, left, width = 26, _left(labels), 640
    height = max(1, len(labels)) * row + 34
    totals = [sum(values[i] for _, values in series) for i in range(len(labels))]
    top = _scale_max(totals)
    span = width - left - 70
    out = _open(width, height, title)
    out += _legend([name for name, _ in series], 4)
    for i, label in enumerate(labels):
        y = i * row + 28
        out.append(f'<text x="{left - 8}" y="{y + 16}" text-anchor="end" {FONT}>{escape(label)}</text>')
        x = float(left)
        for s, (_, values) in enumerate(series):
            w = round(span * values[i] / top, 1)
            if w > 0:
                colour = COLOURS[s % len(COLOURS)]
                out.append(f'<rect x="{x}" y="{y + 3}" width="{w}" height="{row - 8}" fill="{colour}"/>')
            x += w
        out.append(f'<text x="{x + 4}" y="{y + 16}" {FONT}>{totals[i]}</text>')
    out.append("</svg>")
    return "".join(out)


def route_diagram(title: str, steps: Sequence[tuple[str, str]]) -> str:
    """A template's route: a box per step (name, and who approves) joined by arrows, left to
    right, wrapping every four steps."""
    per_row, box_w, box_h, gap = 4, 130, 46, 30
    rows = max(1, -(-len(steps) // per_row))
    width = per_row * (box_w + gap) + 10
    height = rows * (box_h + 24) + 6
    out = _open(width, height, title)
    for i, (name, who) in enumerate(steps):
        r, c = divmod(i, per_row)
        x, y = 6 + c * (box_w + gap), 6 + r * (box_h + 24)
        out.append(
            f'<rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" rx="6" fill="#eef4fb" stroke="{COLOURS[0]}"/>'
        )
        out.append(
            f'<text x="{x + box_w / 2}" y="{y + 19}" text-anchor="middle" {FONT} font-weight="bold">'
            f"{escape(_short(name, 9))}</text>"
        )
        out.append(
            f'<text x="{x + box_w / 2}" y="{y + 36}" text-anchor="middle" {FONT} fill="#555">'
            f"{escape(_short(who, 12))}</text>"
        )
        if i + 1 < len(steps) and c + 1 < per_row:
            ax = x + box_w
            out.append(
                f'<path d="M{ax + 2},{y + box_h / 2} h{gap - 8} l-5,-4 v8 l5,-4" stroke="#555" fill="#555"/>'
            )
    out.append("</svg>")
    return "".join(out)
