"""The leaderboard's confidence intervals stay within [0, 1], in the table, the markdown and the figure."""

import re

import numpy as np
import pandas as pd
import pytest
import scipy.stats as sps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.container import ErrorbarContainer

from lrid_benchmarks import leaderboard

N_TRAIN, N_TEST = 300, 100


def _results(scores):
    """Per-split rows: ``scores`` maps (task, classifier) to the accuracies of the splits."""
    rows = []
    for (task, name), values in scores.items():
        for k, value in enumerate(values):
            rows.append({"task": task, "classifier": name, "params_digest": name, "split_digest": f"{task}{k}",
                         "accuracy": value, "balanced_accuracy": value, "fit_seconds": 1.0, "predict_seconds": 0.1,
                         "n_train": N_TRAIN, "n_test": N_TEST})
    return pd.DataFrame(rows)


def _unclipped(values):
    """The Nadeau-Bengio corrected 95% interval, computed here with scipy."""
    values = np.asarray(values, dtype=float)
    se = np.sqrt((1 / len(values) + N_TEST / N_TRAIN) * values.var(ddof=1))
    half = sps.t.ppf(0.975, len(values) - 1) * se
    return values.mean() - half, values.mean() + half


SCORES = {("easy", "random_forest"): [1.0, 1.0, 0.9], ("easy", "chancey"): [0.0, 0.1, 0.0],
          ("hard", "random_forest"): [0.6, 0.7, 0.65], ("hard", "chancey"): [0.3, 0.2, 0.25]}


def test_confidence_intervals_are_clipped_to_the_unit_interval():
    board = leaderboard.build_leaderboard(_results(SCORES), chance={"easy": 0.25, "hard": 0.25})
    assert board["ci_low"].between(0, 1).all() and board["ci_high"].between(0, 1).all()
    for (task, name), values in SCORES.items():
        row = board.query("task == @task and classifier == @name").iloc[0]
        low, high = _unclipped(values)
        assert row["ci_low"] == pytest.approx(max(low, 0.0)) and row["ci_high"] == pytest.approx(min(high, 1.0))
        assert row["ci_low"] <= row["accuracy_mean"] <= row["ci_high"]
    # the cases that need the clipping do exceed the range before it
    assert _unclipped(SCORES["easy", "random_forest"])[1] > 1 and _unclipped(SCORES["easy", "chancey"])[0] < 0
    intervals = re.findall(r"\| \[(-?[0-9.]+), (-?[0-9.]+)\] \|", leaderboard.to_markdown(board))
    assert len(intervals) == len(board)
    assert all(0 <= float(low) <= float(high) <= 1 for low, high in intervals)
    assert ("1.000" in {high for _, high in intervals}) and ("0.000" in {low for low, _ in intervals})


def _drawn_errorbars(fig):
    ax = fig.axes[0]
    spans = []
    for container in ax.containers:
        if isinstance(container, ErrorbarContainer):
            spans += [(y0, y1) for (_, y0), (_, y1) in container.lines[2][0].get_segments()]
    return ax, spans


def test_figure_error_bars_are_the_clipped_interval_and_the_legend_stays_clear():
    board = leaderboard.build_leaderboard(_results(SCORES), chance={"easy": 0.25, "hard": 0.25})
    fig = leaderboard.plot_leaderboard(board)
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    ax, spans = _drawn_errorbars(fig)
    expected = sorted(zip(board["ci_low"], board["ci_high"]))
    assert np.allclose(sorted(spans), expected)
    legend = fig.legends[0].get_window_extent()
    assert not legend.overlaps(ax.title.get_window_extent()) and not legend.overlaps(ax.get_tightbbox())
    assert {t.get_text() for t in fig.legends[0].get_texts()} == {"random_forest", "chancey", "chance"}


def test_figure_clips_a_board_written_before_the_clipping(tmp_path):
    board = leaderboard.build_leaderboard(_results(SCORES))
    low, high = _unclipped(SCORES["easy", "random_forest"])
    old = board.copy()
    where = (old["task"] == "easy") & (old["classifier"] == "random_forest")
    old.loc[where, ["ci_low", "ci_high"]] = [low, high]  # as an older CSV holds it
    old.to_csv(tmp_path / "old.csv", index=False)
    _, spans = _drawn_errorbars(leaderboard.plot_leaderboard(pd.read_csv(tmp_path / "old.csv")))
    assert max(y1 for _, y1 in spans) == pytest.approx(1.0)
    assert min(y0 for y0, _ in spans) >= 0.0
