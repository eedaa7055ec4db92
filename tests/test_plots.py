"""The figure functions draw what the tables say, in the documented layout."""

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import scipy.stats as sps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.container import BarContainer, ErrorbarContainer
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from lrid_analysis import plots
from lrid_analysis.dataset import AnalysisView


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


# ---------------------------------------------------------------------------
# Layout as drawn: titles, legends, panels
# ---------------------------------------------------------------------------

def _draw(fig):
    """Lay the figure out and render it with Agg, as saving it would."""
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig


def _titles_and_legends(fig):
    titles = [t for t in fig.findobj(Text) if t.get_text() and t.get_visible()
              and (t is getattr(fig, "_suptitle", None)
                   or any(t is ax.title for ax in fig.axes if ax.get_visible()))]
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return titles, legends


def _assert_readable(fig):
    """No legend touches a title or a panel, and every title and legend lies inside the figure."""
    _draw(fig)
    titles, legends = _titles_and_legends(fig)
    assert titles and legends
    figure_box = fig.bbox.padded(1.0)
    for legend in legends:
        box = legend.get_window_extent()
        assert figure_box.x0 <= box.x0 and box.x1 <= figure_box.x1 and figure_box.y0 <= box.y0, box
        for title in titles:
            assert not box.overlaps(title.get_window_extent()), (title.get_text(), box)
        if legend in fig.legends:
            for ax in fig.axes:
                if ax.get_visible():
                    assert not box.overlaps(ax.get_tightbbox()), (legend, ax.get_title())
    for title in titles:
        box = title.get_window_extent()
        assert figure_box.x0 <= box.x0 and box.x1 <= figure_box.x1 and box.y1 <= figure_box.y1, title.get_text()


def _subsample_summary(epochs=(0.4, 0.796748, 1.20325, 2.0)):
    rows = [{"observables": "all", "period": p, "n_samples": n, "period_epochs": e,
             "accuracy_mean": 0.8 + 0.01 * n, "accuracy_sem": 0.01}
            for p, e in zip((1, 2, 3, 5), epochs) for n in (2, 3, 5, 7) if (n - 1) * p <= 20]
    return pd.DataFrame(rows)


def _bar_summary(panels=1):
    return pd.DataFrame([{"classifier": f"clf{k}", "task": t, "observables": o, "accuracy_mean": 0.5,
                          "accuracy_sem": 0.02}
                         for k in range(panels) for t in ("digits", "digits_simclr", "signal1d", "mean")
                         for o in ("weight", "act", "grad", "all")])


def _tiny_view(n_per_rule=6, n_checkpoints=7, seed=0):
    rng = np.random.default_rng(seed)
    rules = ["sgdm", "adam", "feedback", "information"]
    y = np.repeat(rules, n_per_rule)
    offset = np.repeat(np.arange(len(rules), dtype=float), n_per_rule)
    X = (offset[:, None, None] + rng.normal(size=(len(y), n_checkpoints, 2))).astype("float32")
    meta = pd.DataFrame({"learning_rule": y, "layer_position": np.resize(["early", "middle", "deep"], len(y))})
    epochs = np.tile(np.linspace(0.0, 3.0, n_checkpoints), (len(y), 1))
    epochs[1] *= 1.5  # medians, not means, of the epochs per checkpoint
    return AnalysisView(X, np.zeros((len(y), 3)), meta, ["weightabs_mean", "actabs_norm"], epochs)


def _figure_cases():
    importance = pd.DataFrame({"importance": ["gini"] * 3 + ["permutation"] * 3,
                               "statistic": ["weightabs_median", "actabs_norm", "layer_position"] * 2,
                               "measure": ["weight", "act", "layer_position"] * 2,
                               "mean": [0.5, 0.3, 0.2, 0.1, 0.2, 0.0], "sem": [0.01] * 6})
    windows = ["early", "middle", "late"]
    window = pd.DataFrame([{"observables": o, "train_window": a, "test_window": b, "accuracy_mean": 0.6,
                            "accuracy_sem": 0.01} for o in ("weight", "all") for a in windows for b in windows])
    noise = pd.DataFrame([{"observables": "all", "unit_fraction": f, "noise_std": s, "accuracy_mean": 0.9,
                           "accuracy_sem": 0.01} for f in (0.05, 1.0) for s in (0.0, 0.5)])
    labels = ["adam", "feedback"]
    confusion = pd.DataFrame([{"classifier": "random_forest", "actual": a, "predicted": p, "proportion_mean": 0.5,
                               "proportion_sem": 0.05} for a in labels for p in labels])
    long_title = "Held-out task, a long figure title that reaches the right margin (random_forest)"
    return {
        "accuracy_bars": lambda: plots.accuracy_bars(_bar_summary(), x="task", hue="observables", chance=0.25,
                                                     reference=(0.95, 0.01), title=long_title),
        "accuracy_bars_panels": lambda: plots.accuracy_bars(_bar_summary(3), x="task", hue="observables",
                                                            panel="classifier", chance=0.25, title=long_title),
        "subsample_lines": lambda: plots.subsample_lines(_subsample_summary(), chance=0.25, n_checkpoints=21,
                                                         title="Trajectory subsampling (random_forest)"),
        "importance_bars": lambda: plots.importance_bars(importance, title="Importance per statistic (rf, all)"),
        "window_heatmaps": lambda: plots.window_heatmaps(window, title="Train on one third, test on each third"),
        "noise_heatmaps": lambda: plots.noise_heatmaps(noise, title="FA vs IA (random_forest)"),
        "design_heatmaps": lambda: plots.design_heatmaps(
            pd.concat([noise.assign(period=p, n_samples=n) for p, n in ((1, 21), (4, 5))]),
            title="FA vs IA (random_forest, network-grouped splits)"),
        "confusion_heatmaps": lambda: plots.confusion_heatmaps(confusion, title="Mean test confusion"),
        "plot_trajectories": lambda: plots.plot_trajectories(_tiny_view(), "weightabs_mean"),
    }


_WITH_LEGEND = ["accuracy_bars", "accuracy_bars_panels", "subsample_lines", "importance_bars", "plot_trajectories"]


@pytest.mark.parametrize("name", _WITH_LEGEND)
def test_legends_do_not_collide_with_titles_or_panels(name):
    _assert_readable(_figure_cases()[name]())


@pytest.mark.parametrize("name", sorted(set(_figure_cases()) - set(_WITH_LEGEND)))
def test_titles_inside_the_figure_and_apart(name):
    fig = _draw(_figure_cases()[name]())
    titles, _ = _titles_and_legends(fig)
    boxes = [t.get_window_extent() for t in titles]
    assert len(boxes) >= 2
    for a in range(len(boxes)):
        assert fig.bbox.padded(1.0).contains(boxes[a].x1, boxes[a].y1)
        for b in range(a + 1, len(boxes)):
            assert not boxes[a].overlaps(boxes[b]), (titles[a].get_text(), titles[b].get_text())


def test_one_panel_subsample_figure_is_not_squeezed_and_formats_epochs():
    fig = _draw(plots.subsample_lines(_subsample_summary(), chance=0.25, n_checkpoints=21,
                                      title="Trajectory subsampling (random_forest)"))
    ax = fig.axes[0]
    assert ax.get_window_extent().width >= 0.6 * fig.bbox.width  # the legend took 70% of the width before
    assert ax.xaxis.label.get_window_extent().x0 >= 0  # the x label is not cut off
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["chance", "every 1 checkpoint (0.4 epochs)", "every 2 checkpoints (0.8 epochs)",
                      "every 3 checkpoints (1.2 epochs)", "every 5 checkpoints (2 epochs)"]
    one = plots.subsample_lines(_subsample_summary(epochs=(1.0, 2.0, 3.0, 5.0)))
    assert "every 1 checkpoint (1 epoch)" in [t.get_text() for t in one.legends[0].get_texts()]


def test_format_number():
    assert [plots.format_number(v) for v in (1.20325, 0.796748, 2.0, 25.0, 12.5, 0.04, 1234.5)] == \
        ["1.2", "0.8", "2", "25", "12.5", "0.04", "1.23e+03"]


def test_figure_legend_wraps_into_the_figure_width():
    fig = Figure(figsize=(3.0, 2.5), layout="constrained")
    ax = fig.subplots()
    for k in range(8):
        ax.plot([0, 1], [k, k], label=f"a rather long legend label number {k}")
    height = fig.get_figheight()
    legend = plots.figure_legend(fig)
    _draw(fig)
    assert legend.get_window_extent().width <= fig.bbox.width
    assert fig.get_figheight() > height  # grown by the legend, so the panel keeps its height
    assert plots.figure_legend(Figure()) is None


# ---------------------------------------------------------------------------
# Uncertainty
# ---------------------------------------------------------------------------

def _per_split(seed=0, n_splits=(5, 4, 1, 3)):
    rng = np.random.default_rng(seed)
    rows = []
    for (obs, clf), n in zip([("weight", "rf"), ("weight", "svm"), ("act", "rf"), ("act", "svm")], n_splits):
        for split in range(n):
            rows.append({"observables": obs, "classifier": clf, "split": split,
                         "test_accuracy": float(rng.uniform(0.4, 0.9))})
    return pd.DataFrame(rows)


def _errorbars(ax):
    """(x, mean, half length) of every vertical error bar of the panel."""
    out = []
    for container in ax.containers:
        if isinstance(container, ErrorbarContainer):
            for segment in container.lines[2][0].get_segments():
                (x, y0), (_, y1) = segment
                out.append((round(float(x), 9), (y0 + y1) / 2, (y1 - y0) / 2))
    return sorted(out)


def test_accuracy_bars_from_per_split_rows_error_bars_are_the_sem():
    table = _per_split()
    fig = plots.accuracy_bars(table, x="observables", hue="classifier")
    ax = fig.axes[0]
    bars = {(round(b.get_x() + b.get_width() / 2, 9)): b.get_height() for b in _bars(ax)}
    expected = table.groupby(["observables", "classifier"], sort=False)["test_accuracy"]
    errors = _errorbars(ax)
    assert len(errors) == 3  # ("act", "rf") has one split: a bar, no error bar
    assert sorted(round(h, 9) for h in bars.values()) == sorted(round(m, 9) for m in expected.mean())
    sems = {round(float(sps.sem(v)), 9) for _, v in expected if len(v) > 1}
    assert {round(e[2], 9) for e in errors} == sems
    for x, center, _ in errors:
        assert center == pytest.approx(bars[x])
    assert "± s.e.m." in [t.get_text() for t in fig.legends[0].get_texts()]


def test_accuracy_bars_summary_and_per_split_draw_the_same():
    table = _per_split(seed=1, n_splits=(3, 3, 3, 3))
    summary = table.groupby(["observables", "classifier"], sort=False)["test_accuracy"].agg(
        accuracy_mean="mean", accuracy_sem=lambda v: sps.sem(v)).reset_index()
    a = _errorbars(plots.accuracy_bars(table, x="observables", hue="classifier").axes[0])
    b = _errorbars(plots.accuracy_bars(summary, x="observables", hue="classifier").axes[0])
    assert np.allclose(a, b)
    with pytest.raises(ValueError, match="per-split score"):
        plots.accuracy_bars(table.drop(columns="test_accuracy"), x="observables")


def test_noise_heatmap_cells_show_mean_and_sem_of_the_splits():
    rng = np.random.default_rng(3)
    by_split = pd.DataFrame([{"observables": "all", "unit_fraction": f, "noise_std": s, "split": k,
                              "test_accuracy": float(rng.uniform(0.5, 1.0))}
                             for f in (0.25, 1.0) for s in (0.0, 0.5) for k in range(4)])
    grouped = by_split.groupby(["observables", "unit_fraction", "noise_std"])["test_accuracy"]
    summary = grouped.agg(accuracy_mean="mean", accuracy_sem=lambda v: sps.sem(v)).reset_index()
    fig = plots.noise_heatmaps(summary)
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    expected = sorted(f"{100 * m:.1f}\n±{100 * s:.1f}" for m, s in zip(grouped.mean(), grouped.apply(sps.sem)))
    assert texts == expected
    # the per-split table itself gives the same cells
    assert sorted(t.get_text() for t in plots.noise_heatmaps(by_split).axes[0].texts) == expected
    # one split per cell: no s.e.m., the mean alone
    single = summary.assign(accuracy_sem=np.nan)
    assert all("±" not in t.get_text() for t in plots.noise_heatmaps(single).axes[0].texts)


def test_window_heatmaps_and_subsample_lines_from_per_split_rows():
    rng = np.random.default_rng(4)
    windows = ["early", "middle", "late"]
    per_split = pd.DataFrame([{"observables": "all", "train_window": a, "test_window": b, "split": k,
                               "test_accuracy": float(rng.uniform(0.3, 1.0))}
                              for a in windows for b in windows for k in range(3)])
    texts = {t.get_text() for t in plots.window_heatmaps(per_split).axes[0].texts}
    cells = per_split.groupby(["train_window", "test_window"])["test_accuracy"]
    assert texts == {f"{100 * v.mean():.1f}\n±{100 * sps.sem(v):.1f}" for _, v in cells}
    lines = pd.DataFrame([{"observables": "all", "period": p, "n_samples": n, "period_epochs": 0.5 * p, "split": k,
                           "test_accuracy": float(rng.uniform(0.3, 1.0))}
                          for p in (1, 2) for n in (2, 4) for k in range(4)])
    fig = plots.subsample_lines(lines)
    errors = _errorbars(fig.axes[0])
    expected = lines.groupby(["period", "n_samples"])["test_accuracy"]
    assert np.allclose(sorted(e[2] for e in errors), sorted(sps.sem(v) for _, v in expected))
    assert np.allclose(sorted(e[1] for e in errors), sorted(v.mean() for _, v in expected))
    assert "every 2 checkpoints (1 epoch)" in [t.get_text() for t in fig.legends[0].get_texts()]


def test_confusion_heatmap_cells_show_the_sem_when_given():
    labels = ["adam", "sgdm"]
    table = pd.DataFrame([{"classifier": "rf", "actual": a, "predicted": p, "proportion_mean": m,
                           "proportion_sem": s}
                          for (a, p), m, s in zip([(a, p) for a in labels for p in labels], [0.75, 0.25, 0.1, 0.9],
                                                  [0.02, 0.02, np.nan, np.nan])])
    texts = [t.get_text() for t in plots.confusion_heatmaps(table, labels=labels).axes[0].texts]
    assert texts == ["75.0\n±2.0", "25.0\n±2.0", "10", "90"]
    without = [t.get_text() for t in plots.confusion_heatmaps(table.drop(columns="proportion_sem"),
                                                               labels=labels).axes[0].texts]
    assert without == ["75", "25", "10", "90"]


# ---------------------------------------------------------------------------
# plot_trajectories
# ---------------------------------------------------------------------------

def _band_edges(collection, x):
    """Lowest and highest y of a fill_between band at every x."""
    vertices = collection.get_paths()[0].vertices
    low = [vertices[np.isclose(vertices[:, 0], v), 1].min() for v in x]
    high = [vertices[np.isclose(vertices[:, 0], v), 1].max() for v in x]
    return np.array(low), np.array(high)


def test_plot_trajectories_mean_and_std_per_rule():
    view = _tiny_view()
    view.X[0, 2, 0] = np.nan  # left out of its checkpoint only
    fig = plots.plot_trajectories(view, "weightabs_mean", spread="std")
    ax = fig.axes[0]
    frame = pd.DataFrame(view.X[:, :, 0]).assign(rule=view.meta["learning_rule"])
    rules = sorted(set(view.meta["learning_rule"]))
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [f"{plots.rule_label(r)} (n=6)" for r in rules]
    epochs = pd.DataFrame(view.epochs).assign(rule=view.meta["learning_rule"]).groupby("rule").median()
    for line, band, rule in zip(ax.get_lines(), ax.collections, rules):
        rows = frame[frame["rule"] == rule].drop(columns="rule")
        mean, std = rows.mean().to_numpy(), rows.std(ddof=1).to_numpy()  # pandas skips the NaN
        assert np.allclose(line.get_ydata(), mean)
        assert np.allclose(line.get_xdata(), epochs.loc[rule].to_numpy())
        low, high = _band_edges(band, line.get_xdata())
        assert np.allclose(low, mean - std) and np.allclose(high, mean + std)
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "weightabs_mean"
    assert fig.legends[0].get_title().get_text() == "mean ± s.d. over trajectories"


def test_plot_trajectories_layer_filter_iqr_checkpoints_and_given_axes():
    view = _tiny_view()
    fig = Figure()
    ax = fig.subplots()
    out = plots.plot_trajectories(view, "actabs_norm", layer_position="deep", ax=ax, x="checkpoint",
                                  order=["information", "feedback"])
    assert out is fig and not fig.legends
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["IA (n=2)", "FA (n=2)", "Adam (n=2)", "SGDM (n=2)"]
    deep = view.meta["layer_position"].eq("deep") & view.meta["learning_rule"].eq("information")
    values = view.X[deep.to_numpy(), :, 1]
    line = ax.get_lines()[0]
    assert np.allclose(line.get_ydata(), np.median(values, axis=0))
    assert np.allclose(line.get_xdata(), np.arange(view.X.shape[1]))
    low, high = _band_edges(ax.collections[0], line.get_xdata())
    assert np.allclose(low, np.percentile(values, 25, axis=0)) and np.allclose(high, np.percentile(values, 75, axis=0))
    assert "deep" in ax.get_title()


def test_plot_trajectories_errors_and_unknown_epochs():
    view = _tiny_view()
    with pytest.raises(ValueError, match="not in the view.*weightabs_mean"):
        plots.plot_trajectories(view, "gradavgsq_id")
    with pytest.raises(ValueError, match="layer position"):
        plots.plot_trajectories(view, "weightabs_mean", layer_position="nowhere")
    with pytest.raises(ValueError, match="spread"):
        plots.plot_trajectories(view, "weightabs_mean", spread="range")
    view.epochs[:] = np.nan
    assert plots.plot_trajectories(view, "weightabs_mean").axes[0].get_xlabel() == "checkpoint"
    with pytest.raises(ValueError, match="no epochs"):
        plots.plot_trajectories(view, "weightabs_mean", x="epoch")


def test_save_figure_formats(tmp_path):
    fig = plots.accuracy_bars(pd.DataFrame({"x": ["a"], "accuracy_mean": [0.5], "accuracy_sem": [0.1]}), x="x")
    paths = plots.save_figure(fig, tmp_path / "bars.png", formats="png, pdf,svg")
    assert [p.name for p in paths] == ["bars.png", "bars.pdf", "bars.svg"]
    assert (tmp_path / "bars.pdf").read_bytes()[:4] == b"%PDF" and b"<svg" in (tmp_path / "bars.svg").read_bytes()
    with pytest.raises(ValueError, match="unsupported figure format"):
        plots.save_figure(fig, tmp_path / "bars.png", formats=["gif89"])
