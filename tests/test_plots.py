"""The figure functions draw what the tables say, in the documented layout."""

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from matplotlib.container import BarContainer, ErrorbarContainer
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from lrid_analysis import plots


def _bars(ax):
    return [bar for c in ax.containers if isinstance(c, BarContainer) for bar in c]


def test_accuracy_bars_heights_reference_and_chance():
    summary = pd.DataFrame({
        "observables": ["weight", "weight", "act", "act"],
        "classifier": ["rf", "svm", "rf", "svm"],
        "accuracy_mean": [0.9, 0.6, 0.8, np.nan],
        "accuracy_sem": [0.01, np.nan, 0.02, np.nan],
    })
    fig = plots.accuracy_bars(summary, x="observables", hue="classifier", chance=0.25, reference=(0.95, 0.01))
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    heights = sorted(round(b.get_height(), 6) for b in _bars(ax) if np.isfinite(b.get_height()))
    assert heights == [0.6, 0.8, 0.9]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["weight", "act"]
    lines = {round(line.get_ydata()[0], 6) for line in ax.get_lines() if len(set(line.get_ydata())) == 1}
    assert {0.25, 0.95} <= lines


def test_accuracy_bars_panels_and_missing_column():
    summary = pd.DataFrame({"x": ["a", "b", "a", "b"], "p": ["one", "one", "two", "two"],
                            "accuracy_mean": [0.5, 0.6, 0.7, 0.8], "accuracy_sem": [0.1] * 4})
    fig = plots.accuracy_bars(summary, x="x", panel="p", reference={"one": (0.9, 0.0), "two": (0.4, 0.0)})
    assert [ax.get_title() for ax in fig.axes] == ["p = one", "p = two"]
    with pytest.raises(ValueError, match="no column"):
        plots.accuracy_bars(summary, x="nope")


def test_confusion_heatmaps_show_the_matrix():
    labels = ["adam", "sgdm"]
    matrix = np.array([[0.75, 0.25], [0.1, 0.9]])
    table = pd.DataFrame([{"classifier": "rf", "actual": a, "predicted": p, "proportion_mean": matrix[i, j]}
                          for i, a in enumerate(labels) for j, p in enumerate(labels)])
    fig = plots.confusion_heatmaps(table, labels=labels)
    ax = fig.axes[0]
    assert np.allclose(ax.images[0].get_array(), matrix)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Adam", "SGDM"]
    assert {t.get_text() for t in ax.texts} == {"75", "25", "10", "90"}


def test_importance_bars_sorted_and_coloured_by_measure():
    summary = pd.DataFrame({
        "method": ["gini"] * 3 + ["permutation"] * 3,
        "group": ["weightabs_median", "actabs_norm", "layer_position"] * 2,
        "measure": ["weight", "act", "layer_position"] * 2,
        "importance_mean": [0.5, 0.3, 0.2, 0.1, 0.2, 0.0],
        "importance_sem": [0.01] * 6,
    })
    fig = plots.importance_bars(summary, statistic="group", panel="method", mean="importance_mean",
                                sem="importance_sem")
    gini, permutation = fig.axes[:2]
    # largest Gini importance at the top; the same order in both panels
    order = [t.get_text() for t in gini.get_yticklabels()]
    assert order == ["layer_position", "actabs_norm", "weightabs_median"]
    assert [t.get_text() for t in permutation.get_yticklabels()] == order
    widths = [round(b.get_width(), 6) for b in gini.patches]
    assert widths == [0.2, 0.3, 0.5]
    colors = {tuple(np.round(b.get_facecolor()[:3], 3)) for b in gini.patches}
    assert len(colors) == 3


def test_subsample_lines_one_line_per_period():
    rows = [{"observables": "act", "period": p, "n_samples": n, "period_epochs": 5.0 * p,
             "accuracy_mean": 0.5 + 0.01 * n * p, "accuracy_sem": 0.01}
            for p in (1, 5) for n in (2, 3, 5) if (n - 1) * p <= 20]
    fig = plots.subsample_lines(pd.DataFrame(rows), chance=0.25, n_checkpoints=21)
    ax = fig.axes[0]
    lines = [c.lines[0] for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(lines) == 2
    assert np.allclose(lines[1].get_ydata(), [0.6, 0.65, 0.75])
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "every 5 checkpoints (25 epochs)" in labels


def test_window_heatmaps_outline_the_diagonal():
    windows = ["early", "middle", "late"]
    rows = [{"observables": "all", "train_window": a, "test_window": b, "accuracy_mean": 0.5 + 0.1 * i + 0.01 * j,
             "accuracy_sem": 0.01} for i, a in enumerate(windows) for j, b in enumerate(windows)]
    fig = plots.window_heatmaps(pd.DataFrame(rows))
    ax = fig.axes[0]
    grid = np.asarray(ax.images[0].get_array())
    assert np.isclose(grid[2, 0], 0.7) and np.isclose(grid[0, 2], 0.52)  # rows train, columns test
    outlined = [p for p in ax.patches if isinstance(p, Rectangle) and not p.get_fill()]
    assert sorted(p.get_xy() for p in outlined) == [(-0.5, -0.5), (0.5, 0.5), (1.5, 1.5)]


def test_noise_heatmaps_put_full_access_top_right():
    rows = [{"observables": "weight", "unit_fraction": f, "noise_std": s,
             "accuracy_mean": 1.0 if (f, s) == (1.0, 0.0) else 0.5 + 0.1 * f - 0.01 * s, "accuracy_sem": 0.0}
            for f in (0.05, 0.25, 1.0) for s in (0.0, 0.1, 1.0)]
    fig = plots.noise_heatmaps(pd.DataFrame(rows), chance=0.5)
    ax = fig.axes[0]
    image = ax.images[0]
    grid = np.asarray(image.get_array())
    assert image.origin == "lower"
    assert grid[-1, -1] == 1.0  # last row (top, most units) and last column (right, least noise)
    assert np.isclose(grid[0, 0], 0.5 + 0.005 - 0.01)  # 5% of units, noise 1: bottom left
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "0.1", "0"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.05", "0.25", "1"]


def test_save_figure_is_atomic_and_readable(tmp_path):
    summary = pd.DataFrame({"x": ["a"], "accuracy_mean": [0.5], "accuracy_sem": [0.1]})
    path = plots.save_figure(plots.accuracy_bars(summary, x="x"), tmp_path / "sub" / "fig.png")
    assert path.exists() and [p.name for p in path.parent.iterdir()] == ["fig.png"]
    assert matplotlib.image.imread(path).shape[2] in (3, 4)


def test_rule_label():
    assert plots.rule_label("feedback") == "FA" and plots.rule_label("other") == "other"
