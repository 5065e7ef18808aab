"""``LiveCurves``: the training panel's three bqplot figures (loss, PSNR, SSIM/LPIPS) and how they are fed.

What made them draw wrong in a real browser, and the rule kept here against it:

- the figures shared one x scale, so one figure's marks (or the log figure's empty domain) moved the others'
  axes: every figure has its own scales;
- a log scale with no data, or a domain bqplot must infer from marks it has not laid out yet (a hidden tab),
  gave NaN or zero-width domains (a blank loss figure, a vertical PSNR stroke, an x axis without ticks):
  every domain is computed here from the data and set explicitly (``min``/``max``), padded, never empty;
- evaluations are points (``Scatter``), so a single eval is visible and the batch lines stay lines.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import bqplot as bq
import ipywidgets as w

__all__ = ["LINES", "LiveCurves", "MAX_PLOT_POINTS", "data_domain", "nice_ticks", "thin"]

MAX_PLOT_POINTS = 800
Series = dict[str, list[tuple[int, float, float]]]

# series name -> (figure, colour, drawn as eval points)
LINES: dict[str, tuple[str, str, bool]] = {
    "loss": ("loss", "#1f77b4", False),
    "psnr": ("psnr", "#1f77b4", False),
    "eval_psnr": ("psnr", "#d62728", True),
    "eval_ssim": ("quality", "#2ca02c", True),
    "eval_lpips": ("quality", "#9467bd", True),
}
FIGURES = (("loss", "Loss (log scale)"), ("psnr", "PSNR (dB): batch line, eval points"), ("quality", "SSIM / LPIPS"))


def thin(points: list[tuple[int, float, float]], limit: int = MAX_PLOT_POINTS) -> list[tuple[int, float, float]]:
    """At most ``limit`` finite points, evenly strided, always keeping the last one."""
    finite = [p for p in points if math.isfinite(p[2])]
    if len(finite) <= limit:
        return finite
    stride = math.ceil(len(finite) / limit)
    out = finite[::stride]
    return out if out[-1] == finite[-1] else [*out, finite[-1]]


def data_domain(values: Iterable[float], *, log: bool = False, pad: float = 0.05) -> tuple[float, float]:
    """``(min, max)`` for a scale showing ``values``: padded, never empty or zero-width, positive on a log scale."""
    vals = [v for v in values if math.isfinite(v) and (v > 0 or not log)]
    if not vals:
        return (1e-3, 1.0) if log else (0.0, 1.0)
    lo, hi = min(vals), max(vals)
    if log:
        lo, hi = math.log10(lo), math.log10(hi)
        span = max(hi - lo, 0.2)
        return 10 ** (lo - pad * span), 10 ** (hi + pad * span)
    span = hi - lo or max(abs(hi), 1.0)
    return lo - pad * span, hi + pad * span


def nice_ticks(lo: float, hi: float, *, count: int = 5, log: bool = False) -> list[float]:
    """About ``count`` round tick values inside ``[lo, hi]`` (1, 2, 5 times a power of ten on a log scale that
    spans enough decades for three of them)."""
    if log:
        ticks = [m * 10.0**k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
                 for m in (1, 2, 5) if lo <= m * 10.0**k <= hi]
        if len(ticks) > count + 1:
            ticks = [t for t in ticks if f"{t:e}".startswith("1")]
        if len(ticks) >= 3:
            return ticks  # else the range spans less than a decade: round linear steps read better
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, count)
    mag = 10.0 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]


class LiveCurves(w.HBox):
    """Three small figures; ``draw(series, x_by)`` puts a job view's series on them."""

    def __init__(self) -> None:
        self.x_scales = {name: bq.LinearScale(min=0.0, max=1.0, allow_padding=False) for name, _ in FIGURES}
        self.y_scales = {"loss": bq.LogScale(min=1e-3, max=1.0, allow_padding=False),
                         "psnr": bq.LinearScale(min=0.0, max=1.0, allow_padding=False),
                         "quality": bq.LinearScale(min=0.0, max=1.0, allow_padding=False)}
        self.axes: dict[str, tuple[bq.Axis, bq.Axis]] = {}
        self.marks: dict[str, bq.Lines | bq.Scatter] = {}
        self.lines = self.marks  # the name the panel's tests and callers used
        self.figures = [self._figure(name, title) for name, title in FIGURES]
        super().__init__(self.figures)
        self.add_class("nw-curves")

    def _figure(self, name: str, title: str) -> bq.Figure:
        scales = {"x": self.x_scales[name], "y": self.y_scales[name]}
        marks = []
        for series, (target, color, is_eval) in LINES.items():
            if target != name:
                continue
            mark = (bq.Scatter(x=[], y=[], scales=scales, colors=[color], default_size=36, labels=[series],
                               display_legend=True) if is_eval else
                    bq.Lines(x=[], y=[], scales=scales, colors=[color], labels=[series], display_legend=name != "loss"))
            self.marks[series] = mark
            marks.append(mark)
        y_ticks = nice_ticks(scales["y"].min, scales["y"].max, log=name == "loss")
        axes = (bq.Axis(scale=scales["x"], label="step", side="bottom", tick_format="~g", tick_values=nice_ticks(0, 1)),
                bq.Axis(scale=scales["y"], side="left", tick_format={"loss": "~g", "psnr": ".3~g"}.get(name, ".2~f"),
                        tick_values=y_ticks))
        self.axes[name] = axes
        fig = bq.Figure(marks=marks, axes=list(axes), title=title, animation_duration=0, legend_location="top-left",
                        fig_margin={"top": 40, "bottom": 40, "left": 55, "right": 10},
                        layout=w.Layout(width="33%", min_width="260px", height="260px"))
        fig.add_class(f"nw-fig-{name}")
        return fig

    def draw(self, series: Series, x_by: str) -> None:
        """Show ``series`` against step (``x_by="step"``) or training time in seconds."""
        col = 0 if x_by == "step" else 1
        points = {name: thin(series.get(name, [])) for name in self.marks}
        run = [p[col] for p in points["psnr"]]  # every figure spans the run so far (evals line up with steps)
        for name, _title in FIGURES:
            shown = [points[s] for s, (target, _c, _e) in LINES.items() if target == name]
            self._set_domains(name, run + [p[col] for pts in shown for p in pts], [p[2] for pts in shown for p in pts])
        for name, mark in self.marks.items():
            pts = points[name]
            with mark.hold_sync():
                mark.x = [p[col] for p in pts]
                mark.y = [p[2] for p in pts]
        for fig in self.figures:
            fig.axes[0].label = "step" if x_by == "step" else "training time (s)"

    def _set_domains(self, name: str, xs: list[float], ys: list[float]) -> None:
        x_lo, x_hi = data_domain(xs, pad=0.02)
        if xs and min(xs) >= 0:
            x_lo = max(0.0, x_lo)
        y_lo, y_hi = (0.0, 1.0) if name == "quality" else data_domain(ys, log=name == "loss")
        x_axis, y_axis = self.axes[name]
        for scale, axis, (lo, hi) in ((self.x_scales[name], x_axis, (x_lo, x_hi)),
                                      (self.y_scales[name], y_axis, (y_lo, y_hi))):
            if (scale.min, scale.max) != (lo, hi):
                with scale.hold_sync():
                    scale.min, scale.max = float(lo), float(hi)
                axis.tick_values = nice_ticks(lo, hi, log=isinstance(scale, bq.LogScale))

    def point_count(self, name: str) -> int:
        return len(self.marks[name].x)
