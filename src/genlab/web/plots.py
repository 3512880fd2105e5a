"""Small line plots as inline SVG: a report's training curves, crisp at any zoom, a few kilobytes each, and
nothing to fetch."""
from __future__ import annotations

import html
import math

W, H = 300, 170                     # the plot's box in SVG units (the page scales it)
LEFT, RIGHT, TOP, BOTTOM = 46, 10, 22, 30
MAX_POINTS = 300                    # a long run's per-step figures are averaged down to this many points


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def bucket_means(xs: list[float], ys: list[float], points: int = MAX_POINTS) -> tuple[list[float], list[float]]:
    """(x, y) averaged over consecutive buckets, so that a run of 100,000 steps draws as `points` points
    (noisy per-step losses come out smoothed, as a moving average would)."""
    pairs = [(x, y) for x, y in zip(xs, ys) if _finite(x) and _finite(y)]
    if len(pairs) <= points:
        return [p[0] for p in pairs], [p[1] for p in pairs]
    size = len(pairs) / points
    out_x, out_y = [], []
    for i in range(points):
        chunk = pairs[int(i * size):int((i + 1) * size)] or pairs[int(i * size):int(i * size) + 1]
        out_x.append(sum(p[0] for p in chunk) / len(chunk))
        out_y.append(sum(p[1] for p in chunk) / len(chunk))
    return out_x, out_y


def _tick(v: float) -> str:
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 1e4 or a < 1e-3:
        return f"{v:.1e}"
    return f"{v:.3g}"


def line_plot(title: str, xlabel: str, xs: list[float], ys: list[float], errors: list[float] | None = None,
              note: str = "", colour: str = "#1f77b4", dots: bool = False) -> str:
    """One figure against steps, seconds or epochs; `errors` draws ± bars (a standard error)."""
    pts = [(x, y, (errors[i] if errors and _finite(errors[i]) else 0.0))
           for i, (x, y) in enumerate(zip(xs, ys)) if _finite(x) and _finite(y)]
    esc = html.escape
    head = (f'<svg class="plot" viewBox="0 0 {W} {H}" role="img" aria-label="{esc(title)}">'
            f'<title>{esc(title + (": " + note if note else ""))}</title>'
            f'<text x="{LEFT}" y="14" class="pt">{esc(title)}</text>')
    if not pts:
        return head + f'<text x="{W / 2}" y="{H / 2}" class="pn" text-anchor="middle">no finite values</text></svg>'
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] - p[2] for p in pts), max(p[1] + p[2] for p in pts)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        pad = abs(y0) * 0.05 or 1.0
        y0, y1 = y0 - pad, y1 + pad
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def sx(x):
        return LEFT + (x - x0) / (x1 - x0) * pw

    def sy(y):
        return TOP + (1 - (y - y0) / (y1 - y0)) * ph

    parts = [head, f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" class="pf"/>']
    for frac in (0, 0.5, 1):
        y = y0 + frac * (y1 - y0)
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" class="pg"/>'
                     f'<text x="{LEFT - 4}" y="{sy(y) + 3:.1f}" class="pa" text-anchor="end">{_tick(y)}</text>')
    for x, anchor in ((x0, "start"), (x1, "end")):
        parts.append(f'<text x="{sx(x):.1f}" y="{H - 16}" class="pa" text-anchor="{anchor}">{_tick(x)}</text>')
    parts.append(f'<text x="{LEFT + pw / 2}" y="{H - 4}" class="pa" text-anchor="middle">{esc(xlabel)}</text>')
    for x, y, e in pts:
        if e:
            parts.append(f'<line x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{sy(y - e):.1f}" y2="{sy(y + e):.1f}" '
                         f'stroke="{colour}" stroke-width="1"/>')
    path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y, _ in pts)
    parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.4"/>')
    if dots or len(pts) == 1:
        parts += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.2" fill="{colour}"/>' for x, y, _ in pts]
    return "".join(parts) + "</svg>"
