"""Trajectory subsampling: accuracy over number of samples x subsample period (Fig. 4a).

Each trajectory keeps ``n_samples`` checkpoints ``period`` checkpoints
apart, from a random start drawn per trajectory
(:func:`lrid_analysis.features.subsample`; the start is seeded by
``(seed, n_samples, period)``, so every observable set and split sees the
same samples). Every (period, n_samples) that fits into the trajectory is
evaluated on the category-balanced splits, plus the full trajectory.

Default grid (21 checkpoints, 5 epochs apart in the public data): periods
1, 2, 3, 5 checkpoints (5, 10, 15, 25 epochs) x 2, 3, 5, 7, 11 samples where
they fit (period 3: up to 7 samples, period 5: up to 5), i.e. 17
subsampled conditions plus the full trajectory. Comparisons: at each number
of samples, every period against period 1 (consecutive samples), paired by
split.
"""

from __future__ import annotations

import numpy as np

from .. import features, plots
from .cli import cli_kwargs
from .context import prepare
from .options import ExperimentError
from .summaries import compare, summarize

NAME = "trajectory_subsample"
DESCRIPTION = "accuracy over number of trajectory samples x subsample period (Fig. 4a)"
DETAILS = """
Each trajectory keeps N samples P checkpoints apart from a random start, for every
(P, N) of the grid that fits (default periods 1,2,3,5 x samples 2,3,5,7,11), plus the
full trajectory; category-balanced splits; per observable set.
"""
EXAMPLES = (
    "python -m lrid_analysis.experiments trajectory_subsample --observables act,all",
    "python -m lrid_analysis.experiments trajectory_subsample --periods 1,5 --samples 2,3,4,5",
)
DEFAULTS = {"classifiers": ("random_forest",), "observables": ("weight", "act", "grad", "all")}
DEFAULT_PERIODS = (1, 2, 3, 5)
DEFAULT_SAMPLES = (2, 3, 5, 7, 11)


def _ints(text, option):
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ExperimentError(f"{option} expects a comma list of integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise ExperimentError(f"{option} expects integers >= 1, got {text!r}")
    return values


def add_arguments(parser):
    """``--periods``, ``--samples``."""
    group = parser.add_argument_group("subsampling options")
    group.add_argument("--periods", default=",".join(map(str, DEFAULT_PERIODS)), metavar="LIST",
                       help="subsample periods in checkpoints (default: 1,2,3,5)")
    group.add_argument("--samples", default=",".join(map(str, DEFAULT_SAMPLES)), metavar="LIST",
                       help="numbers of samples per trajectory (default: 2,3,5,7,11; those that fit)")


def subsample_grid(n_checkpoints, periods=DEFAULT_PERIODS, samples=DEFAULT_SAMPLES):
    """The (period, n_samples) pairs that fit into ``n_checkpoints``, plus the full trajectory.

    Pairs with fewer than 2 samples (no spacing) or that do not fit are left out.

    Returns
    -------
    list of (int, int)
        Sorted by period then samples; ``(1, n_checkpoints)`` (the full
        trajectory) included.
    """
    grid = {(int(p), int(n)) for p in periods for n in samples
            if int(n) >= 2 and (int(n) - 1) * int(p) <= n_checkpoints - 1 and int(n) < n_checkpoints}
    grid.add((1, int(n_checkpoints)))
    return sorted(grid)


def run(data=None, *, classifier=None, observables=None, n_splits=10, random_state=0, n_jobs=1, out=None,
        periods=DEFAULT_PERIODS, samples=DEFAULT_SAMPLES, **options):
    """Accuracy for every (period, number of samples) and observable set.

    Parameters
    ----------
    data, classifier, observables, n_splits, random_state, n_jobs, out, **options :
        See :func:`lrid_analysis.experiments.separability.run`; default
        classifier random_forest, observables weight, act, grad, all.
    periods : sequence of int
        Spacings in checkpoints.
    samples : sequence of int
        Numbers of samples per trajectory (pairs that do not fit are skipped).

    Returns
    -------
    ExperimentResult
        ``table``: one row per (observables, period, n_samples, split).
    """
    periods, samples = [int(p) for p in periods], [int(n) for n in samples]
    ctx = prepare(NAME, data, classifier=classifier, observables=observables,
                  default_classifiers=DEFAULTS["classifiers"], default_observables=DEFAULTS["observables"],
                  n_splits=n_splits, random_state=random_state, n_jobs=n_jobs, out=out,
                  extra_params={"periods": periods, "samples": samples}, **options)
    if len(ctx.classifiers) != 1:
        raise ExperimentError(f"{NAME} takes one classifier, got {', '.join(ctx.classifiers)}")
    label = next(iter(ctx.classifiers))
    n_ckpt = ctx.view.X.shape[1]
    grid = subsample_grid(n_ckpt, periods, samples)
    if len(grid) < 2:
        raise ExperimentError(f"no (period, samples) pair of {periods} x {samples} fits into {n_ckpt} checkpoints")
    ctx.derived["grid"] = [list(g) for g in grid]
    pairs, names = ctx.balanced_pairs()
    epochs = ctx.view.epochs
    conditions = []
    for obs in ctx.observable_sets:
        sub, _ = ctx.features(obs)
        for period, n in grid:
            sample_seed = int(np.random.SeedSequence([ctx.random_state, n, period]).generate_state(1)[0])
            part = sub if n == n_ckpt else features.subsample(sub, n, period, seed=sample_seed)
            X = features.trajectories(part, check=False)
            spacing = np.nanmedian(epochs[:, period] - epochs[:, 0]) if np.isfinite(epochs).any() else np.nan
            key = {"classifier": label, "observables": obs, "period": period, "n_samples": n,
                   "proportion": round(n / n_ckpt, 4), "period_epochs": float(spacing)}
            conditions.append(ctx.condition(key, ctx.classifier(label), X, part.y, pairs, names))
    table, _ = ctx.evaluate(conditions)
    by = ["observables", "period", "n_samples", "proportion", "period_epochs"]
    summary = summarize(table, by)
    comparisons = compare(table, "period", within=["observables", "n_samples"], reference=1,
                          family="period vs consecutive samples (period 1)")
    def draw():
        return plots.subsample_lines(summary, chance=ctx.chance, n_checkpoints=n_ckpt,
                                       title=f"Trajectory subsampling ({label})")
    return ctx.finish(table, summary, comparisons, draw,
                      seeds={"subsample_seed": "SeedSequence([seed, n_samples, period])"})


def main(args):
    """Command-line entry: ``python -m lrid_analysis.experiments trajectory_subsample``."""
    return run(args.data, periods=_ints(args.periods, "--periods"), samples=_ints(args.samples, "--samples"),
               **cli_kwargs(args, NAME))
