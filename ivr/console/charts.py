"""Small server-side charts as inline SVG: vertical bars over time and labelled horizontal bars.

Each function returns SVG markup as ``markupsafe.Markup`` with every label escaped, a ``<title>``
for screen readers and numbers written on the bars, so a chart reads without hovering and prints.
"""
from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

FONT = 'font-family="system-ui, sans-serif" font-size="12"'
BAR = "#2f6db5"
BAR_2 = "#9cc0e8"
LATE = "#b54a2f"
AXIS = "#666"


def _fmt(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _svg(width: int, height: int, title: str, body: list[str], chart_id: str) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" {FONT}>'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>")


def columns(points: Sequence[tuple[str, float]], *, title: str, chart_id: str, width: int = 960,
            height: int = 180, every: int = 1) -> Markup:
    """Vertical bars, one per point (e.g. calls in each hour); an x label every ``every`` points."""
    left, bottom, top = 36, 22, 14
    plot_w, plot_h = width - left - 6, height - bottom - top
    peak = max([v for _, v in points] + [1])
    step = plot_w / max(len(points), 1)
    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 6}" y2="{top + plot_h}" stroke="{AXIS}"/>',
            f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" fill="{AXIS}">{_fmt(peak)}</text>',
            f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" fill="{AXIS}">0</text>']
    for i, (name, value) in enumerate(points):
        h = plot_h * value / peak
        x = left + i * step
        body.append(f'<rect x="{x + step * 0.1:.1f}" y="{top + plot_h - h:.1f}" width="{max(step * 0.8, 1):.1f}" '
                    f'height="{h:.1f}" fill="{BAR}"><title>{escape(name)}: {_fmt(value)}</title></rect>')
        if i % every == 0:
            body.append(f'<text x="{x + step / 2:.1f}" y="{height - 6}" text-anchor="middle" '
                        f'fill="{AXIS}">{escape(name)}</text>')
    if not points:
        body.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">No data.</text>')
    return _svg(width, height, title, body, chart_id)


def bars(rows: Sequence[dict], *, title: str, chart_id: str, width: int = 640, percent: bool = False,
         target: float | None = None) -> Markup:
    """Horizontal bars, one row per item: ``{"label", "value"}`` and optionally ``"inner"`` (a second,
    lighter bar drawn inside, e.g. calls that passed a step of those that reached it), ``"note"``
    (text after the number) and ``"late"`` (drawn in the warning colour). With ``percent`` values are
    shares 0..1; ``target`` draws a dashed line at that value."""
    label_w, row_h, pad = 190, 24, 8
    plot_w = width - label_w - 230
    height = pad * 2 + row_h * max(len(rows), 1)
    peak = 1.0 if percent else max([float(r["value"]) for r in rows] + [1.0])
    body = []
    for i, row in enumerate(rows):
        y = pad + i * row_h
        value = float(row["value"])
        w = plot_w * value / peak
        colour = LATE if row.get("late") else BAR
        body.append(f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end">{escape(row["label"])}</text>')
        body.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{colour}"/>')
        text = f"{value * 100:.0f}%" if percent else _fmt(value)
        if row.get("inner") is not None:
            inner = float(row["inner"])
            body.append(f'<rect x="{label_w}" y="{y + 8}" width="{plot_w * inner / peak:.1f}" '
                        f'height="{row_h - 16}" fill="{BAR_2}"/>')
        if row.get("note"):
            text += f" {row['note']}"
        body.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 16}">{escape(text)}</text>')
    if target is not None:
        x = label_w + plot_w * target / peak
        body.append(f'<line x1="{x:.1f}" y1="2" x2="{x:.1f}" y2="{height - 2}" stroke="{AXIS}" '
                    f'stroke-dasharray="4 3"/>')
    if not rows:
        body.append(f'<text x="{width / 2}" y="{pad + 16}" text-anchor="middle">No data.</text>')
    return _svg(width, height, title, body, chart_id)
