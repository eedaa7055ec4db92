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
    :func:`design_heatmaps`
        Accuracy over unit fraction x noise per measure (columns) and
        trajectory sampling (rows), the user's point marked (``design``).
    :func:`plot_trajectories`
        Raw observable trajectories over training, mean and spread per
        learning rule.
    :func:`figure_legend`
        One legend below the panels, in as many columns as fit.

Uncertainty is drawn wherever there is more than one split (or seed): error
bars of ± s.e.m. on bars and lines, ``mean ± s.e.m.`` (in %) in heatmap
cells. :func:`accuracy_bars` also takes the per-split table itself and
computes the mean and s.e.m. per bar. Legends go below the panels, so they
never collide with the panel titles or the figure title.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from . import stats
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
    "design_heatmaps",
    "plot_trajectories",
    "figure_legend",
    "format_number",
    "save_figure",
]

#: Display names of the learning rules (public spellings as keys).
RULE_LABELS = {"sgdm": "SGDM", "adam": "Adam", "feedback": "FA", "information": "IA"}

#: Colours of the observable measures and of the layer-position indicator.
MEASURE_COLORS = {
    "weight": "#1f77b4",
    "act": "#ff7f0e",
    "grad": "#2ca02c",
    "gradfwd": "#17becf",
    "all": "#7f7f7f",
    "all_fwd": "#bcbd22",
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


def format_number(value):
    """A number as people write it: two significant digits below 10, three from 10 on.

    Parameters
    ----------
    value : float

    Returns
    -------
    str

    Examples
    --------
    >>> [format_number(v) for v in (1.20325, 0.796748, 2.0, 25.0, 12.5, 0.04)]
    ['1.2', '0.8', '2', '25', '12.5', '0.04']
    """
    value = float(value)
    if not np.isfinite(value):
        return str(value)
    return f"{value:.{3 if abs(value) >= 10 else 2}g}"


def figure_legend(fig, axes=None, handles=None, labels=None, max_cols=8, title=None):
    """One legend for a figure, below its panels, in as many columns as fit its width.

    Below the panels, the legend can collide neither with the figure title
    (``suptitle``) nor with the panel titles. The figure grows by the
    legend's height, so the panels keep their size.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        A figure with ``layout="constrained"``.
    axes : sequence of Axes, optional
        Collect the labelled artists of these panels (default: all), each
        label once.
    handles, labels : sequence, optional
        Explicit legend entries instead.
    max_cols : int
        Most columns; the entries are spread evenly over the rows needed.
    title : str, optional
        Legend title.

    Returns
    -------
    matplotlib.legend.Legend or None
        None when there is nothing to show.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> fig = Figure(figsize=(4, 3), layout="constrained")
    >>> ax = fig.subplots()
    >>> _ = ax.plot([0, 1], label="one"); _ = ax.plot([1, 0], label="two")
    >>> figure_legend(fig).get_texts()[1].get_text()
    'two'
    """
    if handles is None:
        seen = _entries(fig.axes if axes is None else axes)
        handles, labels = list(seen.values()), list(seen)
    if not len(handles):
        return None
    width = 0.97 * fig.get_figwidth() * fig.dpi
    for n_rows in range(int(np.ceil(len(handles) / max_cols)), len(handles) + 1):
        n_cols = int(np.ceil(len(handles) / n_rows))
        legend = fig.legend(list(handles), list(labels), loc="outside lower center", ncols=n_cols,
                            fontsize="small", frameon=False, title=title, title_fontsize="small")
        box = legend.get_window_extent()
        if box.width <= width or n_cols == 1:
            break
        legend.remove()
    if box.width > width:  # one column and still too wide: widen the figure
        fig.set_figwidth(box.width / fig.dpi / 0.95)
    fig.set_figheight(fig.get_figheight() + box.height / fig.dpi)
    return legend


def _entries(axes, first=()):
    """Label -> handle of the labelled artists of ``axes`` (each label once), labels in ``first`` first."""
    seen = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    ordered = [label for label in first if label in seen] + [label for label in seen if label not in first]
    return {label: seen[label] for label in ordered}


def _as_summary(table, by, value, score, who):
    """``table`` if it has ``{value}_mean``, else its per-split rows summarised per condition ``by``."""
    by = [c for c in by if c]
    _check_columns(table, by, who)
    return table if f"{value}_mean" in table.columns else _per_condition(table, by, value, score, who)


def _per_condition(table, by, value, score, who):
    """Mean, s.e.m. and count of a per-split score per condition (``{value}_mean``, ``{value}_sem``, ``n_splits``)."""
    if score is None:
        score = next((c for c in (f"test_{value}", value) if c in table.columns), None)
    if score is None or score not in table.columns:
        raise ValueError(f"{who}: the table has neither {value}_mean / {value}_sem columns nor a per-split score "
                         f"column (test_{value} or {value}); columns are {list(table.columns)}")
    rows = []
    for keys, part in table.groupby(list(by), sort=False, dropna=False):
        mean, sem = stats.mean_sem(part[score].to_numpy(dtype=float))
        rows.append({**dict(zip(by, keys)), f"{value}_mean": float(mean), f"{value}_sem": float(sem),
                     "n_splits": len(part)})
    return pd.DataFrame(rows, columns=list(by) + [f"{value}_mean", f"{value}_sem", "n_splits"])


def _cell_text(mean, sem):
    """A heatmap cell in %: the mean, and below it ``±`` the s.e.m. where there is one (more than one split)."""
    return f"{100 * mean:.1f}\n±{100 * sem:.1f}" if _finite(sem) else f"{100 * mean:.0f}"


def _annotate(ax, means, sems, dark, fontsize=8):
    """Write every finite cell of ``means`` (± ``sems``); ``dark(value)`` tells where the text is white."""
    for i in range(means.shape[0]):
        for j in range(means.shape[1]):
            if np.isfinite(means[i, j]):
                ax.text(j, i, _cell_text(means[i, j], sems[i, j]), ha="center", va="center", fontsize=fontsize,
                        color="white" if dark(means[i, j]) else "black")


def _sem_column(table, value, sem):
    """The s.e.m. column of a heatmap: ``sem`` if given, else ``value`` with ``_mean`` -> ``_sem`` if present."""
    if sem is not None:
        _check_columns(table, [sem], "heatmap")
        return sem
    guess = value[:-len("_mean")] + "_sem" if value.endswith("_mean") else None
    return guess if guess in table.columns else None


def accuracy_bars(summary, x, hue=None, panel=None, value="accuracy", chance=None, reference=None,
                  x_order=None, hue_order=None, title=None, ylabel="test accuracy", reference_label="reference",
                  x_label=None, *, score=None, errorbar_label="± s.e.m."):
    """Grouped bars of a mean score with s.e.m. error bars.

    Parameters
    ----------
    summary : pandas.DataFrame
        Either one row per condition, with the columns ``x`` (and ``hue``,
        ``panel`` when given), ``{value}_mean`` and ``{value}_sem`` (NaN:
        no error bar); or the per-split table itself (one row per condition
        and split, a score column ``score``), from which the mean and the
        s.e.m. over splits of every bar are computed (no error bar for a
        single split).
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
    score : str, optional
        Per-split score column, used when the table has no
        ``{value}_mean`` column (default: ``test_{value}`` or ``value``).
    errorbar_label : str
        Legend entry of the error bars (shown when any bar has one).

    Returns
    -------
    matplotlib.figure.Figure
        One legend below the panels.

    Examples
    --------
    >>> import pandas as pd
    >>> per_split = pd.DataFrame({"observables": ["weight"] * 3 + ["act"] * 3, "split": [0, 1, 2] * 2,
    ...                           "test_accuracy": [0.8, 0.9, 1.0, 0.5, 0.6, 0.4]})
    >>> fig = accuracy_bars(per_split, x="observables", chance=0.25)
    >>> [round(float(bar.get_height()), 2) for bar in fig.axes[0].patches]
    [0.9, 0.5]
    """
    mean_col, sem_col = f"{value}_mean", f"{value}_sem"
    summary = _as_summary(summary, [panel, x, hue], value, score, "accuracy_bars")
    _check_columns(summary, [mean_col, sem_col], "accuracy_bars")
    panels = _order(summary[panel]) if panel else [None]
    xs = _order(summary[x], x_order)
    hues = _order(summary[hue], hue_order) if hue else [None]
    colors = _colors(hues)
    fig, axes = _grid(len(panels), width=min(14.0, max(4.5, 0.32 * len(xs) * len(hues) + 2.0)), height=4.0,
                      max_cols=2 if len(xs) * len(hues) > 12 else 4)
    width = 0.8 / len(hues)
    labelled = False
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
                                fmt="none", ecolor="black", elinewidth=1, capsize=2,
                                label=None if labelled else errorbar_label)
                    labelled = True
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
    entries = _entries(axes, first=[str(h) for h in hues] + [errorbar_label])
    figure_legend(fig, handles=list(entries.values()), labels=list(entries))
    if title:
        fig.suptitle(title)
    return fig


def confusion_heatmaps(confusion, panel="classifier", value="proportion_mean", labels=None, title=None, *,
                       sem=None):
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
    sem : str, optional
        Column of the s.e.m. over splits, written as ``mean ± s.e.m.`` (in %)
        in every cell where it is finite. Default: ``value`` with ``_mean``
        replaced by ``_sem`` when the table has it.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> cells = pd.DataFrame({"classifier": "rf", "actual": ["adam", "adam", "sgdm", "sgdm"],
    ...                       "predicted": ["adam", "sgdm"] * 2, "proportion_mean": [0.75, 0.25, 0.1, 0.9],
    ...                       "proportion_sem": [0.02, 0.02, 0.01, 0.01]})
    >>> confusion_heatmaps(cells).axes[0].texts[0].get_text()
    '75.0\\n±2.0'
    """
    _check_columns(confusion, [panel, "actual", "predicted", value], "confusion_heatmaps")
    sem = _sem_column(confusion, value, sem)
    panels = _order(confusion[panel])
    labels = sorted(set(confusion["actual"]) | set(confusion["predicted"])) if labels is None else list(labels)
    fig, axes = _grid(len(panels), width=3.8, height=3.6)
    image = None
    for ax, p in zip(axes, panels):
        part = confusion[confusion[panel] == p]
        matrix = np.full((len(labels), len(labels)), np.nan)
        errors = np.full_like(matrix, np.nan)
        for _, row in part.iterrows():
            i, j = labels.index(row["actual"]), labels.index(row["predicted"])
            matrix[i, j] = row[value]
            errors[i, j] = row[sem] if sem else np.nan
        image = ax.imshow(matrix, vmin=0, vmax=1, cmap="Blues")
        _annotate(ax, matrix, errors, lambda v: v > 0.6, fontsize=9 if sem is None else 8)
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
    figure_legend(fig, handles=[Patch(color=colors[g]) for g in groups], labels=[str(g) for g in groups])
    if title:
        fig.suptitle(title)
    return fig


def subsample_lines(summary, panel="observables", period="period", n_samples="n_samples", value="accuracy",
                    chance=None, n_checkpoints=None, title=None, *, score=None):
    """Accuracy against the number of trajectory samples, one line per period.

    Parameters
    ----------
    summary : pandas.DataFrame
        One row per (panel, period, n_samples), with ``{value}_mean`` and
        ``{value}_sem``; an optional ``period_epochs`` column labels the
        periods in epochs (formatted with :func:`format_number`).
        Or the per-split table itself (one row per condition and split,
        a score column ``score``): the mean and s.e.m. over its splits are
        computed per cell.
    panel, period, n_samples : str
        Column names.
    value : str
    chance : float, optional
    n_checkpoints : int, optional
        Length of the full trajectory; adds the subsample proportion to the
        x-axis label.
    title : str, optional
    score : str, optional
        Per-split score column, used when the table has no
        ``{value}_mean`` column (default: ``test_{value}`` or ``value``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    mean_col, sem_col = f"{value}_mean", f"{value}_sem"
    epochs = "period_epochs" if "period_epochs" in summary.columns else None
    summary = _as_summary(summary, [panel, period, n_samples, epochs], value, score, "subsample_lines")
    _check_columns(summary, [mean_col, sem_col], "subsample_lines")
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
                epochs = format_number(rows["period_epochs"].iloc[0])
                label += f" ({epochs} epoch{'' if epochs == '1' else 's'})"
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
    figure_legend(fig, axes)
    if title:
        fig.suptitle(title)
    return fig


def window_heatmaps(summary, panel="observables", train="train_window", test="test_window", value="accuracy",
                    windows=("early", "middle", "late"), chance=None, title=None, *, score=None):
    """Train window x test window accuracy, the same-window cells outlined.

    Parameters
    ----------
    summary : pandas.DataFrame
        One row per (panel, train window, test window) with
        ``{value}_mean`` and ``{value}_sem`` (cells read ``mean ± s.e.m.``
        in %, the mean alone where the s.e.m. is NaN).
        Or the per-split table itself (one row per condition and split,
        a score column ``score``): the mean and s.e.m. over its splits are
        computed per cell.
    panel, train, test : str
        Column names.
    value : str
    windows : sequence of str
        Window order of the rows (train) and columns (test).
    chance : float, optional
        Lower end of the colour scale (default 0).
    title : str, optional
    score : str, optional
        Per-split score column, used when the table has no
        ``{value}_mean`` column (default: ``test_{value}`` or ``value``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    mean_col, sem_col = f"{value}_mean", f"{value}_sem"
    summary = _as_summary(summary, [panel, train, test], value, score, "window_heatmaps")
    _check_columns(summary, [mean_col, sem_col], "window_heatmaps")
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
        _annotate(ax, means, sems, lambda v: v <= 0.75)
        for i in range(len(windows)):
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
                   value="accuracy", chance=None, title=None, *, score=None):
    """Accuracy over unit fraction x measurement noise, one heatmap per panel.

    Noise decreases from left to right and the fraction of measured units
    increases from bottom to top, so full access (all units, no noise) is
    the top-right cell, as in the paper's Fig. 5.

    Parameters
    ----------
    summary : pandas.DataFrame
        One row per (panel, unit fraction, noise std) with ``{value}_mean``
        and, optionally, ``{value}_sem`` (written as ``mean ± s.e.m.`` in %
        in the cells where it is finite).
        Or the per-split table itself (one row per condition and split,
        a score column ``score``): the mean and s.e.m. over its splits are
        computed per cell.
        Average several observation seeds of a split first.
    panel, unit_fraction, noise_std : str
        Column names.
    value : str
    chance : float, optional
        Lower end of the colour scale (default 0).
    title : str, optional
    score : str, optional
        Per-split score column, used when the table has no
        ``{value}_mean`` column (default: ``test_{value}`` or ``value``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    mean_col = f"{value}_mean"
    summary = _as_summary(summary, [panel, unit_fraction, noise_std], value, score, "noise_heatmaps")
    _check_columns(summary, [mean_col], "noise_heatmaps")
    sem_col = _sem_column(summary, mean_col, None)
    panels = _order(summary[panel])
    fractions = sorted(pd.unique(summary[unit_fraction]))  # bottom to top: increasing
    noises = sorted(pd.unique(summary[noise_std]), reverse=True)  # left to right: decreasing
    fig, axes = _grid(len(panels), width=3.9, height=3.5)
    image = None
    for ax, p in zip(axes, panels):
        part = summary[summary[panel] == p]
        grid, errors = _cells(part, fractions, noises, unit_fraction, noise_std, mean_col, sem_col)
        image = ax.imshow(grid, origin="lower", vmin=0 if chance is None else chance, vmax=1, cmap="magma",
                          aspect="auto")
        _annotate(ax, grid, errors, lambda v: v <= 0.75)
        ax.set_xticks(range(len(noises)), [f"{v:g}" for v in noises])
        ax.set_yticks(range(len(fractions)), [f"{v:g}" for v in fractions])
        ax.set_xlabel("measurement noise std")
        ax.set_ylabel("fraction of units")
        ax.set_title(str(p))
    fig.colorbar(image, ax=list(axes), shrink=0.8, label=f"test {value}")
    if title:
        fig.suptitle(title)
    return fig


def _cells(part, rows, columns, row_col, col_col, mean_col, sem_col):
    """``(means, sems)`` arrays of shape (len(rows), len(columns)) from one row per cell (NaN where none)."""
    means = np.full((len(rows), len(columns)), np.nan)
    sems = np.full_like(means, np.nan)
    for _, row in part.iterrows():
        i, j = rows.index(row[row_col]), columns.index(row[col_col])
        means[i, j] = row[mean_col]
        sems[i, j] = row[sem_col] if sem_col else np.nan
    return means, sems


def _grid_position(levels, value, log=False):
    """Fractional index of ``value`` along sorted ``levels`` (clamped to the ends)."""
    levels = np.asarray(levels, dtype=float)
    if len(levels) == 1:
        return 0.0
    f = np.log if log else (lambda v: v)
    return float(np.interp(f(value), f(levels), np.arange(len(levels))))


def design_heatmaps(summary, point=None, value="accuracy", chance=None, title=None):
    """Accuracy over unit fraction x noise, one heatmap per measure (column) and sampling (row).

    Parameters
    ----------
    summary : pandas.DataFrame
        One row per grid point: ``observables``, ``unit_fraction``,
        ``noise_std``, ``period``, ``n_samples``, ``{value}_mean`` and
        optionally ``{value}_sem`` and ``units_median`` (median units per
        layer, shown under the fraction ticks).
    point : pandas.DataFrame, optional
        The user's point per measure (the ``point`` table of the ``design``
        experiment: ``observables``, ``period``, ``n_samples``,
        ``grid_unit_fraction``, ``grid_noise_std``, ``status``): a cyan star
        where it lies on the grid, a red cross at the nearest point when it
        is outside.
    value : str
    chance : float, optional
        Lower end of the colour scale (default 0).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> s = pd.DataFrame({"observables": "act", "unit_fraction": [0.1, 1.0], "noise_std": 0.0, "period": 1,
    ...                   "n_samples": 5, "accuracy_mean": [0.6, 0.9]})
    >>> len(design_heatmaps(s).axes)
    2
    """
    mean_col = f"{value}_mean"
    _check_columns(summary, ["observables", "unit_fraction", "noise_std", "period", "n_samples", mean_col],
                   "design_heatmaps")
    sem_col = _sem_column(summary, mean_col, None)
    measures = _order(summary["observables"])
    samplings = sorted(set(zip(summary["n_samples"].astype(int), summary["period"].astype(int))))
    fractions = sorted(pd.unique(summary["unit_fraction"]))
    noises = sorted(pd.unique(summary["noise_std"]), reverse=True)
    fig = Figure(figsize=(3.4 * len(measures) + 0.8, 2.9 * len(samplings) + 0.6), layout="constrained")
    axes = fig.subplots(len(samplings), len(measures), squeeze=False)
    image = None
    for r, (n, p) in enumerate(samplings):
        for c, m in enumerate(measures):
            ax = axes[r, c]
            part = summary[(summary["observables"] == m) & (summary["n_samples"] == n) & (summary["period"] == p)]
            grid, errors = _cells(part, fractions, noises, "unit_fraction", "noise_std", mean_col, sem_col)
            image = ax.imshow(grid, origin="lower", vmin=0 if chance is None else chance, vmax=1, cmap="magma",
                              aspect="auto")
            _annotate(ax, grid, errors, lambda v: v <= 0.75, fontsize=7)
            ax.set_xticks(range(len(noises)), [f"{v:g}" for v in noises], fontsize=7)
            ticks = [f"{v:g}" for v in fractions]
            if "units_median" in part.columns:
                units = part.groupby("unit_fraction")["units_median"].median()
                ticks = [f"{v:g}\n~{format_number(units[v])} u" if v in units.index else f"{v:g}" for v in fractions]
            ax.set_yticks(range(len(fractions)), ticks, fontsize=7)
            if r == len(samplings) - 1:
                ax.set_xlabel("noise std")
            if c == 0:
                ax.set_ylabel(f"{n} samples, period {p}\nfraction of units", fontsize=8)
            if r == 0:
                ax.set_title(str(m))
            if point is None:
                continue
            mine = point[(point["observables"] == m) & (point["n_samples"] == n) & (point["period"] == p)]
            for _, q in mine.iterrows():
                if not (_finite(q.get("grid_unit_fraction")) and _finite(q.get("grid_noise_std"))):
                    continue
                y = _grid_position(fractions, q["grid_unit_fraction"], log=True)
                x = _grid_position(noises[::-1], q["grid_noise_std"])
                x = len(noises) - 1 - x  # noise decreases left to right
                outside = q["status"] == "outside grid"
                ax.plot(x, y, marker="x" if outside else "*", ms=14, mew=2.5,
                        color=_REFERENCE_COLOR if outside else "cyan", mec="black" if not outside else None,
                        linestyle="none")
                if outside:
                    ax.annotate("outside grid", (x, y), xytext=(4, -10), textcoords="offset points", fontsize=7,
                                color=_REFERENCE_COLOR)
    fig.colorbar(image, ax=list(axes.ravel()), shrink=0.6, label=f"test {value}")
    if title:
        fig.suptitle(title)
    return fig


_SPREADS = ("std", "sem", "iqr")


def _center_and_band(values, spread):
    """Line and band over the trajectories (axis 0) of ``values``, NaN ignored, no warning for empty columns."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN checkpoints give NaN, silently
        if spread == "iqr":
            low, center, high = np.nanpercentile(values, [25, 50, 75], axis=0)
            return center, low, high
        count = np.isfinite(values).sum(axis=0)
        center = np.nanmean(values, axis=0)
        half = np.nanstd(values, axis=0, ddof=1)
        if spread == "sem":
            half = half / np.sqrt(count)
        half = np.where(count > 1, half, np.nan)
    return center, center - half, center + half


def plot_trajectories(view, observable, *, by="learning_rule", layer_position=None, ax=None, spread="iqr",
                      x="auto", order=None, title=None):
    """Raw trajectories of one observable over training, a line and a band per learning rule.

    For every group of trajectories (by default every learning rule) the
    line is the centre of its trajectories at each checkpoint and the band
    their spread: by default the median and the interquartile range, which
    stay readable although observables differ by orders of magnitude across
    architectures and layers (a mean ± s.d. band of a nonnegative statistic
    often reaches below zero); ``spread="std"`` draws the mean ± standard
    deviation. NaN values are left out checkpoint by checkpoint.

    Parameters
    ----------
    view : lrid_analysis.dataset.AnalysisView
        ``view.X``: shape (n_trajectories, n_checkpoints, n_observables);
        ``view.meta``: one row per trajectory, with the column ``by`` (and
        ``layer_position`` when filtering); ``view.epochs``: shape
        (n_trajectories, n_checkpoints).
    observable : str
        One of ``view.observables``, e.g. ``"weightabs_mean"``.
    by : str
        Metadata column grouping the trajectories, one line each (learning
        rules get their display names: ``feedback`` -> FA).
    layer_position : str or sequence of str, optional
        Keep only the trajectories of these layer positions (``early``,
        ``middle``, ``deep``); default all.
    ax : matplotlib.axes.Axes, optional
        Draw into this panel (its legend inside it); default a new
        one-panel figure with the legend below.
    spread : {"iqr", "std", "sem"}
        Band: the interquartile range around the median, or the mean ±
        standard deviation across trajectories, or the mean ± standard
        error of the mean.
    x : {"auto", "epoch", "checkpoint"}
        Horizontal axis: training epochs (the median over a group's
        trajectories at each checkpoint), or the checkpoint index. ``auto``:
        epochs where every selected trajectory has them, else checkpoints.
    order : sequence, optional
        Order of the groups (default: sorted).
    title : str, optional
        Default: the observable (and the layer positions kept).

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the panel; one line per group, labelled
        ``"<group> (n=<trajectories>)"``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from lrid_analysis.dataset import AnalysisView
    >>> X = np.arange(40, dtype="float32").reshape(8, 5, 1)  # 8 trajectories, 5 checkpoints
    >>> meta = pd.DataFrame({"learning_rule": ["sgdm"] * 4 + ["feedback"] * 4,
    ...                      "layer_position": ["early", "deep"] * 4})
    >>> view = AnalysisView(X, np.zeros((8, 3)), meta, ["weightabs_mean"], np.tile(np.arange(5.0), (8, 1)))
    >>> fig = plot_trajectories(view, "weightabs_mean")
    >>> [t.get_text() for t in fig.legends[0].get_texts()]
    ['FA (n=4)', 'SGDM (n=4)']
    >>> fig.axes[0].get_lines()[0].get_ydata().tolist()  # median of the 4 FA trajectories per checkpoint
    [27.5, 28.5, 29.5, 30.5, 31.5]
    """
    if observable not in list(view.observables):
        raise ValueError(f"plot_trajectories: observable {observable!r} is not in the view; it has "
                         f"{list(view.observables)}")
    if spread not in _SPREADS:
        raise ValueError(f"plot_trajectories: spread must be one of {_SPREADS}, got {spread!r}")
    if x not in ("auto", "epoch", "checkpoint"):
        raise ValueError(f"plot_trajectories: x must be 'auto', 'epoch' or 'checkpoint', got {x!r}")
    _check_columns(view.meta, [by, "layer_position" if layer_position is not None else None], "plot_trajectories")
    keep = np.ones(len(view.meta), dtype=bool)
    if layer_position is not None:
        positions = [layer_position] if isinstance(layer_position, str) else list(layer_position)
        keep = view.meta["layer_position"].isin(positions).to_numpy()
        if not keep.any():
            present = sorted(pd.unique(view.meta["layer_position"].astype(str)))
            raise ValueError(f"plot_trajectories: no trajectory at layer position(s) {positions}; "
                             f"the view has {present}")
    values = np.asarray(view.X[keep][:, :, list(view.observables).index(observable)], dtype=float)
    epochs = np.asarray(view.epochs[keep], dtype=float)
    groups = view.meta.loc[keep, by].to_numpy()
    if x == "epoch" and not np.isfinite(epochs).any():
        raise ValueError("plot_trajectories: the view has no epochs (all NaN); use x='checkpoint'")
    use_epochs = x == "epoch" or (x == "auto" and np.isfinite(epochs).all())
    names = _order(sorted(pd.unique(groups), key=str), order)
    colors = _colors(names)
    own = ax is None
    if own:
        fig = Figure(figsize=(5.5, 3.8), layout="constrained")
        ax = fig.subplots()
    steps = np.arange(values.shape[1], dtype=float)
    for name in names:
        rows = groups == name
        center, low, high = _center_and_band(values[rows], spread)
        if use_epochs:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                where = np.nanmedian(epochs[rows], axis=0)
        else:
            where = steps
        label = rule_label(name) if by == "learning_rule" else str(name)
        ax.plot(where, center, color=colors[name], lw=1.6, label=f"{label} (n={int(rows.sum())})")
        ax.fill_between(where, low, high, color=colors[name], alpha=0.2, lw=0)
    ax.set_xlabel("epoch" if use_epochs else "checkpoint")
    ax.set_ylabel(observable)
    if title is None:
        title = observable + (f" ({', '.join(positions)} layers)" if layer_position is not None else "")
    ax.set_title(title)
    ax.spines[["top", "right"]].set_visible(False)
    band = {"std": "mean ± s.d.", "sem": "mean ± s.e.m.", "iqr": "median and quartiles"}[spread]
    band += " over trajectories"
    if own:
        figure_legend(fig, [ax], title=band)
    else:
        ax.legend(fontsize="small", frameon=False, title=band, title_fontsize="small")
    return ax.figure


def save_figure(figure, path, dpi=150, formats=None):
    """Write a figure to ``path`` atomically (temporary file, then rename).

    Parameters
    ----------
    figure : matplotlib.figure.Figure
    path : str or Path
        The format follows the suffix (``.png``, ``.pdf``, ``.svg``).
    dpi : int
    formats : sequence of str or str, optional
        Write one file per format instead (``path`` with each suffix), e.g.
        ``("png", "pdf", "svg")`` or ``"png,pdf,svg"``.

    Returns
    -------
    Path, or list of Path when ``formats`` is given

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> fig = accuracy_bars(pd.DataFrame({"x": ["a"], "accuracy_mean": [0.5], "accuracy_sem": [0.1]}), x="x")
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     [p.name for p in save_figure(fig, f"{folder}/bars.png", formats="png,svg")]
    ['bars.png', 'bars.svg']
    """
    path = Path(path)
    if formats is not None:
        names = [f.strip().lstrip(".").lower() for f in (formats.split(",") if isinstance(formats, str) else formats)]
        names = list(dict.fromkeys(n for n in names if n))
        supported = figure.canvas.get_supported_filetypes()
        unknown = [n for n in names if n not in supported]
        if unknown or not names:
            raise ValueError(f"save_figure: unsupported figure format(s) {unknown or formats!r}; "
                             f"choose from {sorted(supported)}")
        return [save_figure(figure, path.with_suffix(f".{n}"), dpi=dpi) for n in names]
    fmt = path.suffix.lstrip(".") or "png"
    return write_atomic(path, lambda tmp: figure.savefig(tmp, dpi=dpi, format=fmt))
