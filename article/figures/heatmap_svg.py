"""Weight kernels and their colour legend as small inline SVGs: square cells, crisp at any zoom, no script.

Distill's convention (shared/reference): red positive, blue negative, near-white zero, on one max |w| per figure.
Every cell carries its value in a <title> (a hover shows it; screen readers get the summary in the figure's text).
"""
from __future__ import annotations

from html import escape


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def diverging_colour(value: float, scale: float, stops: list[str]) -> str:
    """value / scale in [-1, 1] (clipped) -> a hex colour, linear between the evenly spaced stops."""
    t = 0.0 if scale <= 0 else max(-1.0, min(1.0, value / scale))
    pos = (t + 1) / 2 * (len(stops) - 1)
    i = min(int(pos), len(stops) - 2)
    f = pos - i
    a, b = _rgb(stops[i]), _rgb(stops[i + 1])
    return "#" + "".join(f"{round(x + (y - x) * f):02x}" for x, y in zip(a, b))


def kernel_svg(kernel: list[list[float]], scale: float, stops: list[str], *, cell: int, label: str) -> str:
    """One kernel [h][w] as an SVG of h x w square cells of `cell` px, each titled with its weight."""
    h, w = len(kernel), len(kernel[0])
    parts = [f'<svg class="vw-wkernel" width="{w * cell}" height="{h * cell}" viewBox="0 0 {w * cell} {h * cell}" '
             f'role="img" aria-label="{escape(label)}">']
    for y, row in enumerate(kernel):
        for x, v in enumerate(row):
            parts.append(f'<rect x="{x * cell}" y="{y * cell}" width="{cell}" height="{cell}" '
                         f'fill="{diverging_colour(v, scale, stops)}"><title>{escape(label)}, row {y}, column {x}: '
                         f'{v:+.3g}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


def legend_svg(scale: float, stops: list[str], *, width: int = 180, gradient_id: str = "vw-legend") -> str:
    """A horizontal colour bar from -scale (blue) through 0 to +scale (red), labelled at both ends and the middle."""
    gid = escape(gradient_id)
    offsets = "".join(f'<stop offset="{i / (len(stops) - 1):.2f}" stop-color="{c}"/>' for i, c in enumerate(stops))
    return (f'<svg class="vw-legend" width="{width}" height="30" viewBox="0 0 {width} 30" role="img" '
            f'aria-label="colour scale from {-scale:.3g} (blue) through 0 to {scale:+.3g} (red)">'
            f'<defs><linearGradient id="{gid}">{offsets}</linearGradient></defs>'
            f'<rect x="0" y="0" width="{width}" height="12" fill="url(#{gid})" stroke="currentColor" '
            f'stroke-width="0.5"/>'
            f'<text x="0" y="26" font-size="11" fill="currentColor">{-scale:.3g}</text>'
            f'<text x="{width / 2}" y="26" font-size="11" text-anchor="middle" fill="currentColor">0</text>'
            f'<text x="{width}" y="26" font-size="11" text-anchor="end" fill="currentColor">{scale:+.3g}</text></svg>')
