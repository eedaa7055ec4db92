"""Trajectory windows: train on one consecutive third, test on each third (Fig. 4b).

The checkpoints are cut into three consecutive windows (early, middle,
late; :func:`lrid_analysis.trajectories.window_indices`). For every train
window the classifier is wrapped in a
:class:`~lrid_analysis.trajectories.WindowGeneralizer` that fits it once on the
train rows' train window and scores the test rows' three windows (one result
row per (train window, test window) pair of
:func:`lrid_analysis.splits.window_transfer_pairs`); the
features keep the trajectory axis (:func:`lrid_analysis.features.trajectories`)
and are evaluated over the category-balanced splits. When the windows differ
in length (a number of checkpoints not divisible by 3), each keeps its first
``min length`` checkpoints so that features align. Comparisons: within each
train window, every other test window against the same window, paired by
split. The per-split ``train_*`` columns score the train rows on the test
window, like the test columns on the test rows.
"""

from __future__ import annotations

from .. import features, plots
from ..splits import window_transfer_pairs
from ..trajectories import WindowGeneralizer, window_indices
from .cli import cli_kwargs
from .context import prepare
from .options import ExperimentError
from .summaries import compare, summarize

NAME = "trajectory_window"
DESCRIPTION = "train on one consecutive third of the trajectory, test on each third (Fig. 4b)"
DETAILS = """
Cuts every trajectory into early / middle / late thirds; trains on one third of the
train rows and tests on each third of the test rows (3 x 3 pairs), category-balanced
splits, per observable set. The same-window cells are the paper's red lines.
"""
EXAMPLES = ("python -m lrid_analysis.experiments trajectory_window --observables weight,act",)
DEFAULTS = {"classifiers": ("random_forest",), "observables": ("weight", "act", "grad", "all")}


def add_arguments(parser):
    """No options beyond the common ones."""


def run(data=None, *, classifier=None, observables=None, n_splits=10, random_state=0, n_jobs=1, out=None, **options):
    """Accuracy for every (train window, test window) pair and observable set.

    Parameters
    ----------
    data, classifier, observables, n_splits, random_state, n_jobs, out, **options :
        See :func:`lrid_analysis.experiments.separability.run`; default
        classifier random_forest, observables weight, act, grad, all.

    Returns
    -------
    ExperimentResult
        ``table``: one row per (observables, train_window, test_window, split).
    """
    ctx = prepare(NAME, data, classifier=classifier, observables=observables,
                  default_classifiers=DEFAULTS["classifiers"], default_observables=DEFAULTS["observables"],
                  n_splits=n_splits, random_state=random_state, n_jobs=n_jobs, out=out, **options)
    if len(ctx.classifiers) != 1:
        raise ExperimentError(f"{NAME} takes one classifier, got {', '.join(ctx.classifiers)}")
    label = next(iter(ctx.classifiers))
    n_ckpt = ctx.view.X.shape[1]
    if n_ckpt < 3:
        raise ExperimentError(f"need at least 3 checkpoints to cut windows, the data has {n_ckpt}", 1)
    windows = window_indices(n_ckpt, features.WINDOWS)
    ctx.derived["windows"] = {w: cols.tolist() for w, cols in windows.items()}
    pairs, names = ctx.balanced_pairs()
    conditions = []
    for obs in ctx.observable_sets:
        sub, X = ctx.features(obs)
        for train_window in features.WINDOWS:
            key = {"classifier": label, "observables": obs, "train_window": train_window}
            estimator = WindowGeneralizer(ctx.classifier(label), train_window, features.WINDOWS)
            conditions.append(ctx.condition(key, estimator, X, sub.y, pairs, names, output_key="test_window"))
    table, _ = ctx.evaluate(conditions)
    table.insert(table.columns.get_loc("test_window") + 1, "same_window",
                 table["train_window"] == table["test_window"])
    # rows in the order of one condition per (observables, train window, test window), as before
    obs_order = {obs: k for k, obs in enumerate(ctx.observable_sets)}
    pair_order = {pair: k for k, pair in enumerate(window_transfer_pairs())}
    table = (table.assign(_obs=table["observables"].map(obs_order),
                          _pair=[pair_order[p] for p in zip(table["train_window"], table["test_window"])])
             .sort_values(["_obs", "_pair", "split"], kind="stable").drop(columns=["_obs", "_pair"])
             .reset_index(drop=True))
    summary = summarize(table, ["observables", "train_window", "test_window", "same_window"])
    comparisons = compare(table, "test_window", within=["observables", "train_window"],
                          reference=lambda key: key["train_window"], family="test window vs the train window")
    def draw():
        return plots.window_heatmaps(summary, chance=ctx.chance,
                                       title=f"Train on one third, test on each third ({label})")
    return ctx.finish(table, summary, comparisons, draw)


def main(args):
    """Command-line entry: ``python -m lrid_analysis.experiments trajectory_window``."""
    return run(args.data, **cli_kwargs(args, NAME))
