"""A poll question's results as an inline SVG bar chart 调查结果图, drawn on the server.

Sized for a phone's web view (WeCom, DingTalk: about 390 px wide, no script): each option is
its label (wrapped to at most two lines) above a horizontal bar, with the count and percentage
at the bar's end; the bars are scaled to the people who answered, so a full bar means everyone
chose it. Pure: numbers and labels in, SVG text out. Every label is escaped (an option called
`<script>` is drawn as those characters); text uses the page's font (`font-family: inherit`) so
Chinese renders with the page's CJK font. The house style of `reports.charts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 360  # fits a 390 px screen with the page's margins
PAD = 8
FONT_SIZE = 14
LINE = 19
BAR_H = 16
COUNT_W = 92  # room right of the bar for "12 票 100%"
BAR = "#2f6fb3"
TRACK = "#e8eef5"
FONT = f'font-family="inherit" font-size="{FONT_SIZE}"'


@dataclass(frozen=True)
class ChartBar:
    label: str
    count: int
    percent: float  # 0-100


def _char_width(c: str) -> float:
    """Rough width in px at `FONT_SIZE`: CJK and full-width characters are square, others half."""
    return FONT_SIZE if ord(c) > 0x2E80 else FONT_SIZE * 0.58


def wrap(text: str, width: float, max_lines: int = 2) -> list[str]:
    """`text` cut into lines no wider than `width`; the last line ends in … if text was left over."""
    lines: list[str] = []
    current, used = "", 0.0
    for c in " ".join(text.split()):
        w = _char_width(c)
        if used + w > width and current:
            lines.append(current)
            current, used = "", 0.0
            if len(lines) == max_lines:
                break
        current += c
        used += w
    else:
        if current or not lines:
            lines.append(current)
        return lines
    last = lines[-1]
    while last and sum(_char_width(c) for c in last) + FONT_SIZE > width:
        last = last[:-1]
    lines[-1] = last + "…"
    return lines


def _percent(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0") + "%"


def poll_bar_chart(title: str, bars: Sequence[ChartBar], *, voters: int) -> str:
    """One bar per option: label above, bar scaled to `voters`, then `n 票 p%`."""
    span = WIDTH - 2 * PAD - COUNT_W
    rows: list[tuple[list[str], ChartBar]] = [(wrap(b.label, WIDTH - 2 * PAD), b) for b in bars]
    height = PAD + sum(len(lines) * LINE + BAR_H + 14 for lines, _ in rows) + LINE
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'style="max-width:{WIDTH}px" role="img" aria-label="{escape(title)}" class="poll-chart">',
        f"<title>{escape(title)}</title>",
    ]
    y = PAD
    for lines, bar in rows:
        for line in lines:
            y += LINE
            out.append(f'<text x="{PAD}" y="{y - 5}" {FONT} fill="#222">{escape(line)}</text>')
        w = round(span * bar.count / voters, 1) if voters > 0 else 0.0
        out.append(f'<rect x="{PAD}" y="{y}" width="{span}" height="{BAR_H}" rx="3" fill="{TRACK}"/>')
        if w > 0:
            out.append(f'<rect x="{PAD}" y="{y}" width="{w}" height="{BAR_H}" rx="3" fill="{BAR}"/>')
        out.append(
            f'<text x="{PAD + span + 6}" y="{y + BAR_H - 3}" {FONT} fill="#222" class="poll-count">'
            f"{bar.count} 票 {escape(_percent(bar.percent))}</text>"
        )
        y += BAR_H + 14
    out.append(f'<text x="{PAD}" y="{y + LINE - 8}" {FONT} fill="#666">共 {voters} 人作答</text>')
    out.append("</svg>")
    return "".join(out)
