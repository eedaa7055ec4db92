"""Importance: Gini and permutation importance of every statistic (Fig. 3).

A random forest is trained on all observables (the whole trajectory of the
24 admissible statistics plus the layer-position one-hot) on each
category-balanced split. For every statistic, its whole trajectory is one
group of columns (the layer position is a group too):

* Gini importance (:func:`lrid_analysis.importance.gini_importance`): the
  impurity decrease of the group's columns, per tree; mean and s.e.m. over
  all trees of all splits, as in the paper (the s.e.m. over the per-split
  means is kept as ``sem_splits``).
* Permutation importance (:func:`lrid_analysis.importance.permutation_importance`):
  the drop in test accuracy when the group's columns are permuted together
  across test rows (``--repeats`` permutations per split); mean and s.e.m.
  over splits. Each statistic's permutation importance is tested against 0
  (one-sided corrected resampled t-test, Holm over the statistics).

Where the data records the forward-Jacobian gradient (``--gradient auto``,
see :mod:`lrid_analysis.experiments.gradient`), a second forest ranks
``all_fwd`` (``gradfwd`` in place of ``gradavg``) on the same splits: the
summary gains ``observables`` and ``rank`` columns and ``tables["ranking"]``
puts the two rankings side by side.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from .. import importance, plots, stats
from ..features import feature_groups
from .cli import cli_kwargs
from .context import prepare
from .gradient import (
    add_gradient_argument,
    gradient_params,
    gradient_sets,
    resolve_gradient,
)
from .options import ExperimentError, observable_sets
from .summaries import format_summary, summarize

NAME = "importance"
DESCRIPTION = "Gini and permutation importance of each statistic, random forest on all observables (Fig. 3)"
DETAILS = """
Trains the random forest on all observables over --splits category-balanced splits and
reports, per statistic (its whole trajectory; the layer position is one group), the
Gini importance (mean ± s.e.m. over all trees of all splits, as in the paper) and the
permutation importance (drop in test accuracy when the statistic's trajectory is
permuted across test rows; mean ± s.e.m. over splits). On data that records the
forward-Jacobian gradient (generated data), a second forest ranks all_fwd (gradfwd in
place of gradavg) on the same splits, and the two rankings are shown side by side
(--gradient chooses).
"""
EXAMPLES = (
    "python -m lrid_analysis.experiments importance",
    "python -m lrid_analysis.experiments importance --by measure --repeats 10",
    "python -m lrid_analysis.experiments importance --data runs/my_sweep --gradient both",
)
DEFAULTS = {"classifiers": ("random_forest",), "observables": ("all",)}


def add_arguments(parser):
    """``--repeats``, ``--by``, ``--gradient``."""
    group = parser.add_argument_group("importance options")
    group.add_argument("--repeats", type=int, default=5, metavar="N",
                       help="permutations per split and statistic (default: 5)")
    group.add_argument("--by", choices=("statistic", "measure"), default="statistic",
                       help="group columns by statistic (default) or by measure (weight/act/grad)")
    add_gradient_argument(group)


def _split_importances(estimator, X, X_test, y, train, test, split, observables, n_checkpoints, by, n_repeats,
                       seed):
    """Gini (when the estimator holds a forest) and permutation importance of one fitted split."""
    frames = []
    try:
        importance.forest_of(estimator)
    except TypeError:
        pass
    else:
        gini = importance.gini_importance(estimator, observables, n_checkpoints, by=by, per_split=True)
        frames.append(pd.DataFrame({
            "method": "gini", "group": gini["group"], "measure": gini["measure"],
            "value": gini["importance_mean"], "tree_sem": gini["importance_sem"], "n_trees": gini["n_trees"],
        }))
    groups = feature_groups(observables, None if np.ndim(X_test) == 3 else n_checkpoints, by=by)
    split_seed = int(np.random.SeedSequence([int(seed), int(split)]).generate_state(1)[0])
    perm = importance.permutation_importance(estimator, X_test, y, [(train, test)], groups, n_repeats=n_repeats,
                                             random_state=split_seed)
    frames.append(pd.DataFrame({
        "method": "permutation", "group": perm["group"], "measure": perm["measure"],
        "value": perm["importance"], "tree_sem": np.nan, "n_trees": 0,
    }))
    return pd.concat(frames, ignore_index=True)


def _pooled_over_trees(part):
    """Mean and s.e.m. over all trees of all splits from per-split tree means, s.e.m.s and counts."""
    n = part["n_trees"].to_numpy(dtype=float)
    mean = part["value"].to_numpy(dtype=float)
    sd = part["tree_sem"].to_numpy(dtype=float) * np.sqrt(n)
    sd = np.where(np.isfinite(sd), sd, 0.0)
    total = n.sum()
    grand = (n * mean).sum() / total
    sum_sq = ((n - 1) * sd**2 + n * mean**2).sum()
    var = (sum_sq - total * grand**2) / (total - 1) if total > 1 else np.nan
    return float(grand), float(np.sqrt(max(var, 0.0) / total)) if total > 1 else float("nan")


def summarize_importances(per_split, by=()):
    """Mean ± s.e.m. per (``by``, method, group), method being ``gini`` or ``permutation``.

    Gini: over all trees of all splits (``sem``) and over splits
    (``sem_splits``); permutation: over splits (both columns).
    """
    rows = []
    for keys, part in per_split.groupby([*by, "method", "group"], sort=False):
        *outer, kind, group = keys
        split_mean, split_sem = stats.mean_sem(part["value"].to_numpy(dtype=float))
        mean, sem = (_pooled_over_trees(part) if kind == "gini" else (float(split_mean), float(split_sem)))
        rows.append({**dict(zip(by, outer)), "method": kind, "group": group, "measure": part["measure"].iloc[0],
                     "importance_mean": mean, "importance_sem": sem, "sem_splits": float(split_sem),
                     "n_splits": len(part), "n_trees": int(part["n_trees"].sum())})
    return pd.DataFrame(rows)


def ranking(summary):
    """Rank the groups of each observable set and put the rankings side by side.

    Parameters
    ----------
    summary : pandas.DataFrame
        :func:`summarize_importances` by ``observables``.

    Returns
    -------
    ranked : pandas.DataFrame
        ``summary`` with ``rank``: 1 for the most important group of its
        (observables, method), ties in summary order.
    side_by_side : pandas.DataFrame
        One row per (method, rank): the group at that rank under each set
        (a column per set, in summary order).
    """
    rank = summary.groupby(["observables", "method"])["importance_mean"].rank(ascending=False, method="first")
    ranked = summary.assign(rank=rank.astype("Int64"))
    side_by_side = ranked.pivot(index=["method", "rank"], columns="observables", values="group")
    return ranked, side_by_side[list(pd.unique(summary["observables"]))].reset_index().rename_axis(columns=None)


def run(data=None, *, classifier=None, observables=None, n_splits=10, random_state=0, n_jobs=1, out=None, n_repeats=5,
        by="statistic", gradient="auto", **options):
    """Gini and permutation importance of every statistic.

    Parameters
    ----------
    data, classifier, observables, n_splits, random_state, n_jobs, out, **options :
        See :func:`lrid_analysis.experiments.separability.run`; defaults:
        random_forest on all observables. A classifier without a forest
        gets permutation importance only.
    n_repeats : int
        Permutations per split and group.
    by : {"statistic", "measure"}
        Column groups.
    gradient : {"auto", "gradavg", "gradfwd", "both"}
        The gradient of the set (see :mod:`lrid_analysis.experiments.gradient`):
        ``both`` ranks the set and its ``gradfwd`` variant (``all`` and
        ``all_fwd``) with one forest each on the same splits; ``auto``: both
        where the data records ``gradfwd``, else ``gradavg`` (the paper).

    Returns
    -------
    ExperimentResult
        ``summary``: importance per (method, group) (and per
        ``observables``, with a ``rank``, when two sets are ranked);
        ``table``: test scores per split; ``tables["per_split"]``:
        importance per split; ``tables["accuracy"]``: accuracy summary;
        ``tables["ranking"]``: the rankings side by side (two sets only).
    """
    if int(n_repeats) < 1:
        raise ExperimentError(f"--repeats must be >= 1, got {n_repeats}")
    if by not in ("statistic", "measure"):
        raise ExperimentError(f"--by must be 'statistic' or 'measure', got {by!r}")
    sets = observable_sets(observables, DEFAULTS["observables"])
    if len(sets) != 1:
        raise ExperimentError(f"importance takes one observable set (got {', '.join(sets)})")
    gradient = resolve_gradient(gradient, data, options.get("filters"), options.get("verbose", True))
    ctx = prepare(NAME, data, classifier=classifier, observables=gradient_sets(sets, gradient),
                  default_classifiers=DEFAULTS["classifiers"], default_observables=DEFAULTS["observables"],
                  n_splits=n_splits, random_state=random_state, n_jobs=n_jobs, out=out,
                  extra_params={"n_repeats": int(n_repeats), "by": by, **gradient_params(gradient)}, **options)
    if len(ctx.classifiers) != 1:
        raise ExperimentError(f"importance takes one classifier (got {', '.join(ctx.classifiers)})")
    label = next(iter(ctx.classifiers))
    pairs, names = ctx.balanced_pairs()
    conditions = []
    for obs in ctx.observable_sets:
        sub, X = ctx.features(obs)
        extra = partial(_split_importances, observables=list(sub.observables), n_checkpoints=sub.X.shape[1], by=by,
                        n_repeats=int(n_repeats), seed=ctx.random_state)
        conditions.append(ctx.condition({"classifier": label, "observables": obs},
                                        ctx.classifier(label), X, sub.y, pairs, names, extra=extra))
    table, per_split = ctx.evaluate(conditions)
    several = len(ctx.observable_sets) > 1  # a set and its gradfwd variant: per-set columns
    outer = ["observables"] if several else []
    summary = summarize_importances(per_split, by=outer)
    accuracy = summarize(table, ["classifier", "observables"])
    tables = {"per_split": per_split, "accuracy": accuracy}
    if several:
        summary, tables["ranking"] = ranking(summary)

    comparisons = _greater_than_zero(per_split[per_split["method"] == "permutation"], table, outer)

    def draw():
        shown = summary.assign(panel=summary["method"] + (": " + summary["observables"] if several else ""))
        return plots.importance_bars(shown, statistic="group", group="measure", panel="panel",
                                       mean="importance_mean", sem="importance_sem",
                                       title=f"Importance per {by} ({label}, {' vs '.join(ctx.observable_sets)})")
    if ctx.verbose:
        print("\ntest accuracy of the forests:")
        print(format_summary(accuracy))
        if several:
            print("\nrankings side by side (gradavg: the paper's gradient; gradfwd: through the forward weights):")
            with pd.option_context("display.max_rows", 200, "display.width", 200):
                print(tables["ranking"].to_string(index=False))
    return ctx.finish(table, summary, comparisons, draw, tables=tables,
                      seeds={"permutation_seed": ctx.random_state},
                      heading="importance (in %; Gini: share of impurity decrease; permutation: accuracy drop)")


def _greater_than_zero(perm, table, outer):
    """One-sided corrected t-tests of each group's permutation importance against 0, Holm within each set."""
    n_train, n_test = table["n_train"].mean(), table["n_test"].mean()
    frames = []
    for keys, in_set in (perm.groupby(outer, sort=False) if outer else [((), perm)]):
        rows = []
        for group, part in in_set.groupby("group", sort=False):
            values = part["value"].to_numpy(dtype=float)
            if len(values) < 2 or not np.isfinite(values).all():
                continue
            result = stats.corrected_ttest(values, n_train, n_test, popmean=0.0, alternative="greater")
            rows.append({"family": "permutation importance > 0", **dict(zip(outer, keys)), "group": group,
                         "mean": result.mean, "t": result.statistic, "df": result.df, "p": result.pvalue,
                         "n_splits": len(values)})
        frame = pd.DataFrame(rows)
        if not frame.empty:
            frame["reject"], frame["p_holm"] = stats.holm(frame["p"].to_numpy())
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def main(args):
    """Command-line entry: ``python -m lrid_analysis.experiments importance``."""
    return run(args.data, n_repeats=args.repeats, by=args.by, gradient=args.gradient, **cli_kwargs(args, NAME))
