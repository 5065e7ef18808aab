"""LiveCurves: every figure has its own scales with explicit domains that cover the data, round tick values, and
evaluations drawn as points (what the browser draws is checked in tests/e2e/test_training_browser.py)."""

from __future__ import annotations

import math

import bqplot as bq

from nerf_widgets.widgets.curves import LiveCurves, data_domain, nice_ticks


def test_domains_are_never_empty_flat_or_non_positive_on_a_log_scale() -> None:
    assert data_domain([]) == (0.0, 1.0) and data_domain([], log=True) == (1e-3, 1.0)
    lo, hi = data_domain([3.0])
    assert lo < 3.0 < hi
    lo, hi = data_domain([0.02, 0.0, -1.0, float("nan"), 0.05], log=True)
    assert 0 < lo < 0.02 and hi > 0.05
    lo, hi = data_domain([10.0, 20.0])
    assert lo < 10.0 and hi > 20.0


def test_ticks_are_round_and_inside_the_domain() -> None:
    assert nice_ticks(0.0, 104.45) == [0.0, 25.0, 50.0, 75.0, 100.0]
    assert nice_ticks(13.1, 22.7) == [14.0, 16.0, 18.0, 20.0, 22.0]
    assert nice_ticks(1e-4 * 0.8, 0.05, log=True) == [1e-4, 1e-3, 1e-2]
    small = nice_ticks(0.0292, 0.0331, log=True)  # less than a decade: linear round steps
    assert len(small) >= 3 and all(0.0292 <= t <= 0.0331 for t in small)


def test_each_figure_has_its_own_scales_set_to_the_data() -> None:
    curves = LiveCurves()
    series = {"loss": [(s, s / 10, 0.05 * math.exp(-s / 50)) for s in range(1, 201)],
              "psnr": [(s, s / 10, 13 + s / 20) for s in range(1, 201)],
              "eval_psnr": [(100, 10.0, 16.0), (200, 20.0, 21.5)], "eval_ssim": [(100, 10.0, 0.5)]}
    curves.draw(series, "step")
    scales = [id(mark.scales["x"]) for mark in curves.marks.values()]
    assert len({id(fig.marks[0].scales["x"]) for fig in curves.figures}) == 3 and len(scales) == 5
    psnr_x = curves.marks["psnr"].scales["x"]
    assert psnr_x.min <= 1 and psnr_x.max >= 200 and (psnr_x.max - psnr_x.min) < 1.1 * 200
    loss_y = curves.marks["loss"].scales["y"]
    assert isinstance(loss_y, bq.LogScale) and 0 < loss_y.min <= min(p[2] for p in series["loss"])
    assert isinstance(curves.marks["eval_psnr"], bq.Scatter) and list(curves.marks["eval_psnr"].x) == [100, 200]
    quality_x = curves.marks["eval_ssim"].scales["x"]
    assert quality_x.min <= 1 and quality_x.max >= 200  # evals line up with the run's steps
    assert [round(t, 1) for t in curves.figures[2].axes[1].tick_values] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    x_axis = curves.figures[1].axes[0]
    assert list(x_axis.tick_values) == [0, 50, 100, 150, 200]
    curves.draw(series, "time")
    assert curves.marks["psnr"].scales["x"].max >= 20.0 and curves.figures[0].axes[0].label == "training time (s)"
