"""Trend charts as server-side SVG: no chart library, no script, so the report opens offline and prints well."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape


@dataclass
class Series:
    name: str  # shown in the HTML legend, not in the SVG (the legend carries both languages)
    color: str
    values: Sequence[float | None]  # percent, None = not measured in that run


def line_chart(labels: Sequence[str], series: Sequence[Series], *, width: int = 720, height: int = 240,
               target: float | None = 100.0, ymin: float = 0.0, ymax: float = 100.0) -> str:
    """A percent-over-runs line chart; gaps (None) break the line rather than pretending a value."""
    left, right, top, bottom = 44, 12, 12, 34
    pw, ph = width - left - right, height - top - bottom
    n = len(labels)

    def x(i: int) -> float:
        return left + (pw * i / (n - 1) if n > 1 else pw / 2)

    def y(v: float) -> float:
        v = min(max(v, ymin), ymax)
        return top + ph * (1 - (v - ymin) / (ymax - ymin))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
           f'role="img" class="chart">']
    for tick in range(0, 101, 25):
        tv = ymin + (ymax - ymin) * tick / 100
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(tv):.1f}" y2="{y(tv):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y(tv) + 4:.1f}" font-size="11" text-anchor="end" fill="#555">'
                   f'{tv:g}%</text>')
    if target is not None:
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(target):.1f}" y2="{y(target):.1f}" '
                   f'stroke="#2e7d32" stroke-dasharray="6 4"/>')
    step = max(1, n // 10)
    for i, lab in enumerate(labels):
        if i % step == 0 or i == n - 1:
            out.append(f'<text x="{x(i):.1f}" y="{height - 12}" font-size="11" text-anchor="middle" '
                       f'fill="#555">{escape(lab)}</text>')
    for s in series:
        segment: list[str] = []
        segments: list[list[str]] = []
        for i, v in enumerate(s.values):
            if v is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            segment.append(f"{x(i):.1f},{y(v):.1f}")
            out.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{s.color}">'
                       f"<title>{escape(s.name)} {labels[i]}: {v:g}%</title></circle>")
        if segment:
            segments.append(segment)
        for seg in segments:
            if len(seg) > 1:
                out.append(f'<polyline fill="none" stroke="{s.color}" stroke-width="2" points="{" ".join(seg)}"/>')
    out.append("</svg>")
    return "".join(out)


def bar(pct: float | None, *, width: int = 120, height: int = 10) -> str:
    """A small inline bar for table cells (grey when there is nothing to measure)."""
    if pct is None:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
                f'<rect width="{width}" height="{height}" fill="#eee"/></svg>')
    color = "#2e7d32" if pct >= 100 else "#f9a825" if pct >= 90 else "#c62828"
    w = width * min(max(pct, 0.0), 100.0) / 100
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
            f'<rect width="{width}" height="{height}" fill="#eee"/>'
            f'<rect width="{w:.1f}" height="{height}" fill="{color}"/></svg>')
