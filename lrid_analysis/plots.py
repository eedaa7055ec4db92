"""Figures of the experiments, drawn from tidy result tables with matplotlib.

Every function takes a tidy summary table (one row per condition, the mean
and standard error of the mean of a score in ``{value}_mean`` /
``{value}_sem`` columns, or the named columns stated in its docstring) and
returns a :class:`matplotlib.figure.Figure`. Figures are built with the
object-oriented API (``Figure`` and the Agg canvas), never through
``pyplot``: nothing global changes, no window opens, and plotting works on
machines without a display. :func:`save_figure` writes a figure atomically.

Functions
    :func:`accuracy_bars`
        Grouped bars of mean ± s.e.m. with chance and reference lines
        (Fig. 2a, 2b, S1, S2b).
    :func:`confusion_heatmaps`
        Mean confusion matrices, one panel per classifier (Fig. 2c).
    :func:`importance_bars`
        Horizontal bars of feature importance per statistic, coloured by
        measure, one panel per importance measure (Fig. 3).
    :func:`subsample_lines`
        Accuracy against the number of trajectory samples, one line per
        subsample period (Fig. 4a).
    :func:`window_heatmaps`
        Train-window x test-window accuracy, same-window cells outlined
        (Fig. 4b).
    :func:`noise_heatmaps`
        Accuracy over unit fraction x measurement noise (Fig. 5).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from .atomic import write_atomic

__all__ = [
    "RULE_LABELS",
    "MEASURE_COLORS",
    "rule_label",
    "accuracy_bars",
    "confusion_heatmaps",
    "importance_bars",
    "subsample_lines",
    "window_heatmaps",
    "noise_heatmaps",
    "plot_trajectories",
    "save_figure",
]

#: Display names of the learning rules (public spellings as keys).
RULE_LABELS = {"sgdm": "SGDM", "adam": "Adam", "feedback": "FA", "information": "IA"}

#: Colours of the observable measures and of the layer-position indicator.
MEASURE_COLORS = {
    "weight": "#1f77b4",
    "act": "#ff7f0e",
    "grad": "#2ca02c",
    "all": "#7f7f7f",
    "layer_position": "#9467bd",
}

_CYCLE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
          "#bcbd22", "#17becf")
_REFERENCE_COLOR = "#d62728"


def rule_label(rule):
    """Display name of a learning rule (``feedback`` -> ``FA``); unknown names unchanged."""
    return RULE_LABELS.get(str(rule), str(rule))


def _check_columns(table, columns, who):
    missing = [c for c in columns if c is not None and c not in table.columns]
    if missing:
        raise ValueError(f"{who}: the table has no column(s) {missing}; columns are {list(table.columns)}")
    if len(table) == 0:
        raise ValueError(f"{who}: the table is empty")


def _order(values, given=None):
    """Distinct values in first-appearance order, or ``given`` restricted to those present."""
    present = list(pd.unique(pd.Series(values)))
    if given is None:
        return present
    return [v for v in given if v in present] + [v for v in present if v not in given]


def _colors(names):
    out, k = {}, 0
    for name in names:
        if str(name) in MEASURE_COLORS:
            out[name] = MEASURE_COLORS[str(name)]
        else:
            out[name] = _CYCLE[k % len(_CYCLE)]
            k += 1
    return out


def _grid(n_panels, width=4.2, height=3.6, max_cols=4):
    n_cols = min(n_panels, max_cols)
    n_rows = int(np.ceil(n_panels / n_cols))
    fig = Figure(figsize=(width * n_cols, height * n_rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(n_rows, n_cols, squeeze=False)).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def _finite(value):
    return value is not None and np.isfinite(value)


def _legend(fig, axes):
    """One legend for the figure, outside the panels on the right (labels of all panels, once)."""
    seen = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    if seen:
        fig.legend(list(seen.values()), list(seen), fontsize="small", loc="outside right upper", frameon=False)


def accuracy_bars(summary, x, hue=None, panel=None, value="accuracy", chance=None, reference=None,
                  x_order=None, hue_order=None, title=None, ylabel="test accuracy", reference_label="reference",
                  x_label=None):
    """Grouped bars of a mean score with s.e.m. error bars.

    Parameters
    ----------
    summary : pandas.DataFrame
        One row per condition, with the columns ``x`` (and ``hue``,
        ``panel`` when given), ``{value}_mean`` and ``{value}_sem`` (NaN:
        no error bar).
    x : str
        Column whose values are the bar groups along the x axis.
    hue : str, optional
        Column whose values are the bars within a group (one colour each).
    panel : str, optional
        Column whose values get a panel each.
    value : str
        Score name (``accuracy`` reads ``accuracy_mean`` / ``accuracy_sem``).
    chance : float, optional
        Dashed grey line at chance level.
    reference : (mean, sem) or dict of panel value to (mean, sem), optional
        Red line with a shaded ± s.e.m. band, e.g. the category-balanced
        accuracy behind held-out results.
    x_order, hue_order : sequence, optional
        Orders of the groups and the bars (default: first appearance).
    title : str, optional
    ylabel, reference_label, x_label : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    mean_col, sem_col = f"{value}_mean", f"{value}_sem"
    _check_columns(summary, [x, hue, panel, mean_col, sem_col], "accuracy_bars")
    panels = _order(summary[panel]) if panel else [None]
    xs = _order(summary[x], x_order)
    hues = _order(summary[hue], hue_order) if hue else [None]
    colors = _colors(hues)
    fig, axes = _grid(len(panels), width=min(14.0, max(4.5, 0.32 * len(xs) * len(hues) + 2.0)), height=4.0,
                      max_cols=2 if len(xs) * len(hues) > 12 else 4)
    width = 0.8 / len(hues)
    for ax, p in zip(axes, panels):
        part = summary if panel is None else summary[summary[panel] == p]
        for k, h in enumerate(hues):
            rows = part if hue is None else part[part[hue] == h]
            lookup = {row[x]: row for _, row in rows.iterrows()}
            pos, means, sems = [], [], []
            for i, xv in enumerate(xs):
                if xv in lookup:
                    pos.append(i - 0.4 + width * (k + 0.5))
                    means.append(float(lookup[xv][mean_col]))
                    sems.append(float(lookup[xv][sem_col]))
            if pos:
                ax.bar(pos, means, width=width * 0.95, color=colors[h], label=None if h is None else str(h),
                       edgecolor="none")
                has = np.isfinite(sems)
                if has.any():
                    ax.errorbar(np.asarray(pos)[has], np.asarray(means)[has], yerr=np.asarray(sems)[has],
                                fmt="none", ecolor="black", elinewidth=1, capsize=2)
        ref = reference.get(p) if isinstance(reference, dict) else reference
        if ref is not None and _finite(ref[0]):
            ax.axhline(ref[0], color=_REFERENCE_COLOR, lw=1.5, label=reference_label)
            if len(ref) > 1 and _finite(ref[1]):
                ax.axhspan(ref[0] - ref[1], ref[0] + ref[1], color=_REFERENCE_COLOR, alpha=0.15, lw=0)
        if chance is not None:
            ax.axhline(chance, color="0.4", ls="--", lw=1, label="chance")
        ax.set_xticks(range(len(xs)))
        ax.set_xticklabels([str(v).replace(", ", "\n") for v in xs], rotation=30 if len(xs) > 6 else 0,
                           ha="right" if len(xs) > 6 else "center", fontsize="small" if len(xs) > 6 else None)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel(ylabel)
        ax.set_xlabel(x_label if x_label is not None else x)
        if p is not None:
            ax.set_title(f"{panel} = {p}")
        ax.spines[["top", "right"]].set_visible(False)
    _legend(fig, axes)
    if title:
        fig.suptitle(title)
    return fig


def confusion_heatmaps(confusion, panel="classifier", value="proportion_mean", labels=None, title=None):
    """Mean confusion matrices as heatmaps, rows actual and columns predicted.

    Parameters
    ----------
    confusion : pandas.DataFrame
        One row per (panel, actual, predicted) with the columns ``panel``,
        ``actual``, ``predicted`` and ``value`` (e.g. the mean over splits of
        the row-normalised proportion).
    panel : str
        Column giving one heatmap each (e.g. the classifier).
    value : str
    labels : sequence, optional
        Class order (default: sorted).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    _check_columns(confusion, [panel, "actual", "predicted", value], "confusion_heatmaps")
    panels = _order(confusion[panel])
    labels = sorted(set(confusion["actual"]) | set(confusion["predicted"])) if labels is None else list(labels)
    fig, axes = _grid(len(panels), width=3.8, height=3.6)
    image = None
    for ax, p in zip(axes, panels):
        part = confusion[confusion[panel] == p]
        matrix = np.full((len(labels), len(labels)), np.nan)
        for _, row in part.iterrows():
            matrix[labels.index(row["actual"]), labels.index(row["predicted"])] = row[value]
        image = ax.imshow(matrix, vmin=0, vmax=1, cmap="Blues")
        for i in range(len(labels)):
            for j in range(len(labels)):
                if np.isfinite(matrix[i, j]):
                    ax.text(j, i, f"{100 * matrix[i, j]:.0f}", ha="center", va="center", fontsize=9,
                            color="white" if matrix[i, j] > 0.6 else "black")
        names = [rule_label(v) for v in labels]
        ax.set_xticks(range(len(labels)), names)
        ax.set_yticks(range(len(labels)), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("actual")
        ax.set_title(str(p))
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="proportion of actual class")
    if title:
        fig.suptitle(title)
    return fig


def importance_bars(summary, statistic="statistic", group="measure", panel="importance", mean="mean", sem="sem",
                    title=None):
    """Horizontal bars of importance per statistic, coloured by measure.

    Parameters
    ----------
    summary : pandas.DataFrame
        One row per (panel, statistic): columns ``statistic``, ``group``
        (``weight``, ``act``, ``grad`` or ``layer_position``), ``panel``
        (e.g. ``gini`` / ``permutation``), ``mean`` and ``sem``.
    statistic, group, panel, mean, sem : str
        Column names.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Statistics sorted by decreasing importance in the first panel (the
        largest at the top), the same order in every panel.
    """
    _check_columns(summary, [statistic, group, panel, mean, sem], "importance_bars")
    panels = _order(summary[panel])
    first = summary[summary[panel] == panels[0]].sort_values(mean, ascending=True)
    order = list(first[statistic]) + [s for s in _order(summary[statistic]) if s not in set(first[statistic])]
    groups = _order(summary[group])
    colors = _colors(groups)
    fig, axes = _grid(len(panels), width=4.6, height=max(3.5, 0.22 * len(order) + 1.2))
    for ax, p in zip(axes, panels):
        part = summary[summary[panel] == p].set_index(statistic)
        ys = np.arange(len(order))
        values = [float(part.loc[s, mean]) if s in part.index else np.nan for s in order]
        errors = [float(part.loc[s, sem]) if s in part.index else np.nan for s in order]
        errors = [e if np.isfinite(e) else 0.0 for e in errors]
        color = [colors[part.loc[s, group]] if s in part.index else "white" for s in order]
        ax.barh(ys, values, xerr=errors, color=color, capsize=2, edgecolor="none")
        ax.set_yticks(ys, order, fontsize=8)
        ax.axvline(0, color="0.3", lw=0.8)
        ax.set_xlabel(f"{p} importance")
        ax.set_title(str(p))
        ax.spines[["top", "right"]].set_visible(False)
    fig.legend([Patch(color=colors[g]) for g in groups], [str(g) for g in groups], fontsize="small",
               loc="outside right upper", frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def subsample_lines(summary, panel="observables", period="period", n_samples="n_samples", value="accuracy",
                    chance=None, n_checkpoints=None, title=None):
    """Accuracy against the number of trajectory samples, one line per period.

    Parameters
    ----------
    summary : pandas.DataFrame
        One row per (panel, period, n_samples), with ``{value}_mean`` and
        ``{value}_sem``; an optional ``period_epochs`` column labels the
        periods in epochs.
    panel, period, n_samples : str
        Column names.
    value : str
    chance : float, optional
    n_checkpoints : int, optional
        Length of the full trajectory; adds the subsample proportion to the
        x-axis label.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    mean_col, sem_col = f"{value}_mean", f"{value}_sem"
    _check_columns(summary, [panel, period, n_samples, mean_col, sem_col], "subsample_lines")
    panels = _order(summary[panel])
    periods = sorted(pd.unique(summary[period]))
    colors = _colors(periods)
    fig, axes = _grid(len(panels))
    for ax, p in zip(axes, panels):
        part = summary[summary[panel] == p]
        for q in periods:
            rows = part[part[period] == q].sort_values(n_samples)
            if rows.empty:
                continue
            label = f"every {q} checkpoint{'s' if q != 1 else ''}"
            if "period_epochs" in rows.columns and np.isfinite(rows["period_epochs"].iloc[0]):
                label += f" ({rows['period_epochs'].iloc[0]:g} epochs)"
            sems = rows[sem_col].fillna(0.0).to_numpy(dtype=float)
            ax.errorbar(rows[n_samples], rows[mean_col], yerr=sems, marker="o", ms=4, capsize=2,
                        color=colors[q], label=label)
        if chance is not None:
            ax.axhline(chance, color="0.4", ls="--", lw=1, label="chance")
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("samples per trajectory" + (f" (of {n_checkpoints})" if n_checkpoints else ""))
        ax.set_ylabel(f"test {value}")
        ax.set_title(str(p))
        ax.spines[["top", "right"]].set_visible(False)
    _legend(fig, axes)
    if title:
        fig.suptitle(title)
    return fig


def window_heatmaps(summary, panel="observables", train="train_window", test="test_window", value="accuracy",
                    windows=("early", "middle", "late"), chance=None, title=None):
    """Train window x test window accuracy, the same-window cells outlined.

    Parameters
    ----------
    summary : pandas.DataFrame
        One row per (panel, train window, test window) with
        ``{value}_mean`` and ``{value}_sem``.
    panel, train, test : str
        Column names.
    value : str
    windows : sequence of str
        Window order of the rows (train) and columns (test).
    chance : float, optional
        Lower end of the colour scale (default 0).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    mean_col, sem_col = f"{value}_mean", f"{value}_sem"
    _check_columns(summary, [panel, train, test, mean_col, sem_col], "window_heatmaps")
    panels = _order(summary[panel])
    windows = [w for w in windows if w in set(summary[train]) | set(summary[test])]
    fig, axes = _grid(len(panels), width=3.8, height=3.5)
    image = None
    for ax, p in zip(axes, panels):
        part = summary[summary[panel] == p]
        means = np.full((len(windows), len(windows)), np.nan)
        sems = np.full_like(means, np.nan)
        for _, row in part.iterrows():
            i, j = windows.index(row[train]), windows.index(row[test])
            means[i, j], sems[i, j] = row[mean_col], row[sem_col]
        image = ax.imshow(means, vmin=0 if chance is None else chance, vmax=1, cmap="viridis")
        for i in range(len(windows)):
            for j in range(len(windows)):
                if np.isfinite(means[i, j]):
                    text = f"{100 * means[i, j]:.0f}"
                    if np.isfinite(sems[i, j]):
                        text += f"\n±{100 * sems[i, j]:.1f}"
                    ax.text(j, i, text, ha="center", va="center", fontsize=8,
                            color="black" if means[i, j] > 0.75 else "white")
            ax.add_patch(Rectangle((i - 0.5, i - 0.5), 1, 1, fill=False, edgecolor=_REFERENCE_COLOR, lw=2.5))
        ax.set_xticks(range(len(windows)), windows)
        ax.set_yticks(range(len(windows)), windows)
        ax.set_xlabel("test window")
        ax.set_ylabel("train window")
        ax.set_title(str(p))
    fig.colorbar(image, ax=list(axes), shrink=0.8, label=f"test {value}")
    if title:
        fig.suptitle(title)
    return fig


def noise_heatmaps(summary, panel="observables", unit_fraction="unit_fraction", noise_std="noise_std",
                   value="accuracy", chance=None, title=None):
    """Accuracy over unit fraction x measurement noise, one heatmap per panel.

    Noise decreases from left to right and the fraction of measured units
    increases from bottom to top, so full access (all units, no noise) is
    the top-right cell, as in the paper's Fig. 5.

    Parameters
    ----------
    summary : pandas.DataFrame
        One row per (panel, unit fraction, noise std) with ``{value}_mean``.
    panel, unit_fraction, noise_std : str
        Column names.
    value : str
    chance : float, optional
        Lower end of the colour scale (default 0).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    mean_col = f"{value}_mean"
    _check_columns(summary, [panel, unit_fraction, noise_std, mean_col], "noise_heatmaps")
    panels = _order(summary[panel])
    fractions = sorted(pd.unique(summary[unit_fraction]))  # bottom to top: increasing
    noises = sorted(pd.unique(summary[noise_std]), reverse=True)  # left to right: decreasing
    fig, axes = _grid(len(panels), width=3.9, height=3.5)
    image = None
    for ax, p in zip(axes, panels):
        part = summary[summary[panel] == p]
        grid = np.full((len(fractions), len(noises)), np.nan)
        for _, row in part.iterrows():
            grid[fractions.index(row[unit_fraction]), noises.index(row[noise_std])] = row[mean_col]
        image = ax.imshow(grid, origin="lower", vmin=0 if chance is None else chance, vmax=1, cmap="magma",
                          aspect="auto")
        for i in range(len(fractions)):
            for j in range(len(noises)):
                if np.isfinite(grid[i, j]):
                    ax.text(j, i, f"{100 * grid[i, j]:.0f}", ha="center", va="center", fontsize=8,
                            color="black" if grid[i, j] > 0.75 else "white")
        ax.set_xticks(range(len(noises)), [f"{v:g}" for v in noises])
        ax.set_yticks(range(len(fractions)), [f"{v:g}" for v in fractions])
        ax.set_xlabel("measurement noise std")
        ax.set_ylabel("fraction of units")
        ax.set_title(str(p))
    fig.colorbar(image, ax=list(axes), shrink=0.8, label=f"test {value}")
    if title:
        fig.suptitle(title)
    return fig


def plot_trajectories(view, observable, by="learning_rule", title=None):
    """Raw trajectories of one statistic, median and interquartile band per value of ``by``.

    Minimal version (runner branch) for the tutorial; the figures branch
    brings the full one.

    Parameters
    ----------
    view : AnalysisView
        ``X`` of shape (n_trajectories, n_checkpoints, n_observables),
        ``epochs`` of shape (n_trajectories, n_checkpoints).
    observable : str
        A statistic of the view.
    by : str
        Metadata column whose values get one line each (default the rule).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from lrid_analysis.dataset import load_view
    >>> from lrid_analysis.sources import resolve_data
    >>> view = load_view(resolve_data("embedded")[0], ["weightabs_median"])
    >>> len(plot_trajectories(view, "weightabs_median").axes[0].lines)
    4
    """
    if observable not in view.observables:
        raise ValueError(f"the view has no statistic {observable!r}; it has {list(view.observables)}")
    j = list(view.observables).index(observable)
    values = view.meta[by].to_numpy(dtype=object)
    fig, axes = _grid(1, width=5.0, height=3.6)
    ax = axes[0]
    for value in _order(pd.Series(values)):
        rows = values == value
        curves = view.X[rows, :, j]
        x = np.nanmedian(view.epochs[rows], axis=0)
        low, mid, high = np.nanpercentile(curves, [25, 50, 75], axis=0)
        line, = ax.plot(x, mid, label=rule_label(value) if by == "learning_rule" else str(value))
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("epoch")
    ax.set_ylabel(observable)
    ax.set_title(title or f"{observable}: median and interquartile range")
    ax.legend(fontsize="small", frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def save_figure(figure, path, dpi=150):
    """Write a figure to ``path`` atomically (temporary file, then rename).

    Parameters
    ----------
    figure : matplotlib.figure.Figure
    path : str or Path
        The format follows the suffix (``.png``, ``.pdf``, ``.svg``).
    dpi : int

    Returns
    -------
    Path
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    return write_atomic(path, lambda tmp: figure.savefig(tmp, dpi=dpi, format=fmt))
