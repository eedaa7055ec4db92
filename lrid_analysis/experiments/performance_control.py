"""Performance control: is the rule read from the observables or from how well the network learned?

Two controls on category-balanced splits (``--grouping``; network by default here: a learning
curve is the same on every layer of a network, so trajectory splits let it recognise networks):

* **learning-curve baseline**: the same classifiers on the network's learning
  curve only (per-checkpoint train/validation accuracy and loss, the
  generator's ``train_accuracy``, ``val_accuracy``, ``train_loss``,
  ``val_loss`` columns), next to the observables;
* **performance matching**: the same comparison restricted to networks whose
  final validation accuracy falls in accuracy bins shared by the compared
  rules within each task, every rule subsampled to the same number of
  networks per (task, bin) cell, so the compared rules have the same
  distribution of final performance. For the 4-way problem and each pair of
  rules; the networks kept per cell are printed and written.

Data without learning curves (the public data, the shipped embedded data)
have neither control: the run says so and reports the observables only.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from ..dataset import LEARNING_CURVE_COLUMNS, AnalysisView, read_table
from ..sources import resolve_data
from .cli import cli_kwargs
from .context import prepare
from .options import ExperimentError
from .summaries import compare, confidence_intervals, summarize

NAME = "performance_control"
DESCRIPTION = "observables vs learning-curve-only classifiers, on all and on performance-matched networks"
DETAILS = """
Classifiers on the learning curve alone (per-checkpoint train/val accuracy and loss) next to
the same classifiers on the observables, then both again on performance-matched networks:
within each task, final validation accuracy is cut into --bins equal-width bins over [0, 1];
only bins holding every compared rule are kept, each rule subsampled to the same number of
networks per (task, bin). For the 4-way problem and each pair of rules. The networks kept per
cell are printed. Data without learning curves (the public data, the v1 embedded data): the controls are skipped,
with a message.
"""
EXAMPLES = (
    "python -m lrid_analysis.experiments performance_control --data runs/my_sweep",
    "python -m lrid_analysis.experiments performance_control --data runs/my_sweep --bins 5 --grouping network",
)
DEFAULTS = {"classifiers": ("random_forest",), "observables": ("all",)}
#: A learning curve is a property of the network, the same on all its layers: under the paper's
#: trajectory grouping it identifies a network seen in training, so this control splits whole
#: networks by default.
GROUPING_DEFAULT = "network"
#: Learning-curve feature set label in the tables.
CURVE = "learning_curve"


def add_arguments(parser):
    """``--bins``: number of final-accuracy bins."""
    group = parser.add_argument_group("performance_control options")
    group.add_argument("--bins", type=int, default=10, metavar="N",
                       help="equal-width bins of final validation accuracy over [0, 1] (default: 10)")


def learning_curves(data, view):
    """Per-network learning curves of the run's data, or None when the data has none.

    Parameters
    ----------
    data : the ``data`` argument of the run (a path, source name, DataFrame or view)
    view : AnalysisView
        The run's view (its ``meta`` has ``run_id``).

    Returns
    -------
    curves : ndarray of shape (n_trajectories, n_checkpoints, 4) or None
        The curve of each trajectory's network (``LEARNING_CURVE_COLUMNS``
        order), NaN where not recorded.
    final : ndarray of shape (n_trajectories,) or None
        Each trajectory's network's validation accuracy at its last checkpoint.
    """
    if isinstance(data, AnalysisView):
        return None, None
    columns = ["run_id", "checkpoint", *LEARNING_CURVE_COLUMNS]
    if isinstance(data, pd.DataFrame):
        frame = data[[c for c in columns if c in data.columns]]
    else:
        path, _ = resolve_data(data)
        frame = read_table(path, columns=columns)
    if "val_accuracy" not in frame.columns or frame["val_accuracy"].isna().all():
        return None, None
    per_network = frame.groupby(["run_id", "checkpoint"], sort=True)[list(LEARNING_CURVE_COLUMNS)].first()
    grid = per_network.unstack("checkpoint")  # networks x (column, checkpoint)
    n_ckpt = grid.columns.get_level_values("checkpoint").nunique()
    values = grid.to_numpy(dtype=np.float64).reshape(len(grid), len(LEARNING_CURVE_COLUMNS), n_ckpt)
    values = values.transpose(0, 2, 1)
    index = pd.Index(grid.index.astype(str)).get_indexer(view.meta["run_id"].astype(str))
    if (index < 0).any():
        raise ExperimentError("some trajectories' networks have no learning-curve rows", 1)
    curves = values[index]
    last = np.where(np.isfinite(curves[:, :, 1]), np.arange(n_ckpt), -1).max(axis=1)
    final = np.where(last >= 0, curves[np.arange(len(curves)), np.maximum(last, 0), 1], np.nan)
    return curves, final


def matched_networks(meta, final, rules, n_bins, random_state):
    """Performance-matched networks of ``rules``: shared (task, accuracy bin) cells, equal counts per rule.

    Parameters
    ----------
    meta : pandas.DataFrame
        Trajectory metadata with ``run_id``, ``task``, ``learning_rule``.
    final : ndarray of shape (n_trajectories,)
        Final validation accuracy of each trajectory's network.
    rules : sequence of str
    n_bins : int
        Equal-width bins over [0, 1].
    random_state : int
        Seed of the subsampling within each cell.

    Returns
    -------
    keep : set of str
        Kept ``run_id``.
    cells : pandas.DataFrame
        One row per (task, bin, rule): ``n_available``, ``n_kept``.

    Examples
    --------
    >>> meta = pd.DataFrame({"run_id": list("abcdef"), "task": "t", "learning_rule": ["x", "x", "x", "y", "y", "y"]})
    >>> keep, cells = matched_networks(meta, np.array([.12, .15, .91, .13, .55, .57]), ["x", "y"], 10, 0)
    >>> sorted(keep)  # bin [0.1, 0.2) holds both rules: one network each (a or b, drawn, and d)
    ['b', 'd']
    >>> cells[["bin", "learning_rule", "n_available", "n_kept"]].values.tolist()[:4]
    [['[0.10, 0.20)', 'x', 2, 1], ['[0.10, 0.20)', 'y', 1, 1], ['[0.50, 0.60)', 'x', 0, 0], ['[0.50, 0.60)', 'y', 2, 0]]
    """
    nets = meta[["run_id", "task", "learning_rule"]].astype(str).assign(final=final)
    nets = nets.drop_duplicates("run_id")
    nets = nets[nets["learning_rule"].isin(rules) & np.isfinite(nets["final"])].sort_values("run_id")
    nets["bin"] = np.clip(np.floor(nets["final"] * n_bins), 0, n_bins - 1).astype(int)
    rng = np.random.RandomState(random_state)
    keep, rows = set(), []
    for (task, b), cell in nets.groupby(["task", "bin"], sort=True):
        counts = cell["learning_rule"].value_counts()
        n = int(min(counts.get(r, 0) for r in rules))
        for rule in rules:
            ids = cell.loc[cell["learning_rule"] == rule, "run_id"].to_numpy()
            chosen = ids[rng.permutation(len(ids))[:n]] if n else ids[:0]
            keep.update(chosen.tolist())
            rows.append({"task": task, "bin": f"[{b / n_bins:.2f}, {(b + 1) / n_bins:.2f})",
                         "learning_rule": rule, "n_available": len(ids), "n_kept": n})
    return keep, pd.DataFrame(rows)


def _comparisons(rules):
    return [("4-way" if len(rules) > 2 else " vs ".join(rules), tuple(rules))] + [
        (f"{a} vs {b}", (a, b)) for a, b in combinations(rules, 2) if len(rules) > 2]


def run(data=None, *, classifier=None, observables=None, n_splits=10, random_state=0, n_jobs=1, out=None,
        bins=10, grouping="network", **options):
    """Observables vs learning-curve accuracy, on all networks and on performance-matched ones.

    Parameters
    ----------
    data, classifier, observables, n_splits, random_state, n_jobs, out, **options
        See :func:`lrid_analysis.experiments.separability.run` (``grouping`` included).
        Default classifier: the random forest; default observables: all.
    bins : int
        Equal-width final-accuracy bins over [0, 1] for the matching.
    grouping : {"network", "trajectory"}
        Default ``"network"``: the learning curve is the same on every layer
        of a network, so trajectory splits would let it identify networks.

    Returns
    -------
    ExperimentResult
        ``table``: one row per (networks, comparison, features, classifier,
        split), ``networks`` being ``all`` or ``matched``; ``tables["cells"]``:
        the networks available and kept per (comparison, task, bin, rule).
    """
    if int(bins) < 1:
        raise ExperimentError(f"--bins must be >= 1, got {bins}")
    ctx = prepare(NAME, data, classifier=classifier, observables=observables,
                  default_classifiers=DEFAULTS["classifiers"], default_observables=DEFAULTS["observables"],
                  n_splits=n_splits, random_state=random_state, n_jobs=n_jobs, out=out,
                  extra_params={"bins": int(bins)}, grouping=grouping, **options)
    curves, final = learning_curves(data, ctx.view)
    if curves is None and ctx.verbose:
        print("note: this data has no learning curves (train/val accuracy and loss per checkpoint; the public "
              "data has none): the learning-curve classifiers and the performance matching are skipped, only "
              "the observables are reported. The embedded data and data generated with lrid_generate have them.")
    rules = sorted(set(ctx.view.meta["learning_rule"].astype(str)))
    conditions, cells = [], []
    for label, compared in _comparisons(rules):
        parts = [("all", None)]
        if curves is not None:
            keep, cell = matched_networks(ctx.view.meta, final, compared, int(bins), ctx.random_state)
            cells.append(cell.assign(comparison=label))
            parts.append(("matched", keep))
        for networks, keep in parts:
            in_rules = ctx.view.meta["learning_rule"].astype(str).isin(compared).to_numpy()
            if keep is not None:
                in_rules = in_rules & ctx.view.meta["run_id"].astype(str).isin(keep).to_numpy()
            rows = np.flatnonzero(in_rules)
            if len(rows) == 0:
                if ctx.verbose:
                    print(f"note: {label}: no networks in accuracy bins shared by the rules; matched part skipped")
                continue
            subset = ctx.view.subset(rows)
            try:
                pairs, names = ctx.balanced_pairs(subset)
            except ExperimentError as err:
                if ctx.verbose:
                    print(f"note: {label}, {networks} networks: no balanced split ({err}); skipped")
                continue
            feature_sets = [(obs, *ctx.features(obs, subset)) for obs in ctx.observable_sets]
            if curves is not None:
                flat = np.nan_to_num(curves[rows].reshape(len(rows), -1), nan=-1.0)  # train_* null at checkpoint 0
                feature_sets.append((CURVE, subset, flat))
            for features_name, sub, X in feature_sets:
                for clf in ctx.classifiers:
                    key = {"networks": networks, "comparison": label, "features": features_name, "classifier": clf}
                    conditions.append(ctx.condition(key, ctx.classifier(clf), X, sub.y, pairs,
                                                    names, view=subset))
    if not conditions:
        raise ExperimentError("no comparison has enough networks for a balanced split (with --grouping network, "
                              "at least 2 networks per rule): use more networks or --grouping trajectory", 1)
    table, _ = ctx.evaluate(conditions)
    by = ["networks", "comparison", "features", "classifier"]
    summary = _with_ci(table, summarize(table, by), by)
    comparisons = compare(table, "features", within=["networks", "comparison", "classifier"], reference=CURVE)
    cells = pd.concat(cells, ignore_index=True) if cells else pd.DataFrame()
    if ctx.verbose and not cells.empty:
        shown = cells.pivot_table(index=["comparison", "task", "bin"], columns="learning_rule", values="n_kept",
                                  aggfunc="sum", fill_value=0)
        shown = shown[(shown > 0).any(axis=1)]
        print("\nperformance-matched networks kept per (task, final val. accuracy bin), per rule:")
        with pd.option_context("display.max_rows", 500, "display.width", 200):
            print(shown.to_string())

    def draw():
        return _figure(summary, ctx.chance)

    return ctx.finish(table, summary, comparisons if not comparisons.empty else None,
                      draw if curves is not None else None, tables={"cells": cells} if not cells.empty else None)


def _with_ci(table, summary, by):
    """The summary with corrected 95% confidence intervals (Nadeau & Bengio) of each mean."""
    return summary.merge(confidence_intervals(table, by), on=by, how="left")


def _figure(summary, chance):
    """Per comparison (rows), the observables' and the learning curve's accuracy with 95% corrected CIs.

    One panel per network set (all, performance-matched); a grey tick marks
    each row's chance (``chance`` for the 4-way problem, 0.5 for a pair).
    """
    import matplotlib.pyplot as plt

    from lrid_analysis.plots import figure_legend

    panels = list(dict.fromkeys(summary["networks"]))
    comparisons = list(dict.fromkeys(summary["comparison"]))
    comparisons.sort(key=lambda c: c != "4-way")  # the 4-way problem on top, pairs in their order below
    features = list(dict.fromkeys(summary["features"]))
    features.sort(key=lambda f: f == CURVE)  # observables first, the learning curve last
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 0.45 * len(comparisons) + 1.6),
                             sharey=True, squeeze=False, layout="constrained")
    offsets = {f: (k - (len(features) - 1) / 2) * 0.22 for k, f in enumerate(features)}
    for ax, networks in zip(axes[0], panels):
        part = summary[summary["networks"] == networks]
        for y, comparison in enumerate(comparisons):
            floor = chance if comparison == "4-way" else 0.5
            ax.plot([floor, floor], [y - 0.4, y + 0.4], color="lightgrey", lw=1.5)
            for k, feature in enumerate(features):
                row = part[(part["comparison"] == comparison) & (part["features"] == feature)]
                if row.empty:
                    continue
                row = row.iloc[0]
                mean = row["accuracy_mean"]
                low, high = max(row["accuracy_ci_low"], 0.0), min(row["accuracy_ci_high"], 1.0)
                label = "learning curve only" if feature == CURVE else f"observables ({feature})"
                ax.errorbar(mean, y + offsets[feature], xerr=[[mean - low], [high - mean]], fmt="o" if
                            feature != CURVE else "s", color="C3" if feature == CURVE else f"C{k}", ms=5,
                            capsize=2, label=label)
        ax.set(title=f"{networks} networks", xlim=(0.2, 1.01), xlabel="test accuracy")
        ax.grid(axis="x", color="0.92")
        ax.set_yticks(range(len(comparisons)), comparisons)
    axes[0][0].invert_yaxis()
    fig.suptitle("Performance control: observables vs the learning curve (95% corrected CIs; grey: chance)",
                 fontsize=9)
    figure_legend(fig, axes[0])
    return fig


def main(args):
    """Command-line entry: ``python -m lrid_analysis.experiments performance_control``."""
    return run(args.data, bins=args.bins, **cli_kwargs(args, NAME))
