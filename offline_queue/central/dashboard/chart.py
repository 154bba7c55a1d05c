"""A bar chart of scans per day as numbers for an inline SVG (templates/chart.svg.html):
drawn on the server, no script, no image file."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    top: int  # the value of the highest grid line
    grid: list[tuple[float, int]]  # (y, value) of each grid line
    baseline: float
    left: float


def _nice_top(peak: int) -> int:
    """The smallest 1, 2 or 5 × 10^k at or above ``peak`` (at least 1)."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= peak:
                return m * step
        step *= 10


def bar_chart(labels: list[str], values: list[int], *, width: int = 720,
              height: int = 240) -> Chart:
    left, right, top_pad, bottom = 56.0, 8.0, 12.0, 40.0
    top = _nice_top(max(values, default=0))
    plot_h = height - top_pad - bottom
    plot_w = width - left - right
    slot = plot_w / max(len(values), 1)
    bars = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * value / top
        bars.append(Bar(x=round(left + i * slot + slot * 0.15, 1),
                        y=round(top_pad + plot_h - h, 1), width=round(slot * 0.7, 1),
                        height=round(h, 1), label=label, value=int(value)))
    lines = 5 if top >= 5 else top  # 5, 10, 20, 50 ... divide by 5: whole grid values
    grid = [(round(top_pad + plot_h * (1 - k / lines), 1), top * k // lines)
            for k in range(lines + 1)]
    return Chart(width, height, bars, top, grid, baseline=top_pad + plot_h, left=left)
