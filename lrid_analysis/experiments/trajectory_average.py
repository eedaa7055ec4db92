"""Trajectory average: the full trajectory against its average over training (Fig. S2b).

Every classifier is trained once on the full trajectory of the statistics
and once on their mean over the checkpoints
(:func:`lrid_analysis.features.average`; one value per statistic plus the
layer position), on the same category-balanced splits. Comparisons: the
average against the full trajectory for every classifier and observable
set, paired by split.
"""

from __future__ import annotations

from .. import features, plots
from .cli import cli_kwargs
from .context import prepare
from .summaries import compare, summarize

NAME = "trajectory_average"
DESCRIPTION = "full trajectory vs its average over training, per classifier and observable set (Fig. S2b)"
DETAILS = """
Trains every classifier on the full trajectory and on the trajectory mean of each
statistic (category-balanced splits, per observable set). Default classifiers: the
random forest and the linear SVM (--quick: the random forest).
"""
EXAMPLES = ("python -m lrid_analysis.experiments trajectory_average",
            "python -m lrid_analysis.experiments trajectory_average --quick --observables weight")
DEFAULTS = {"classifiers": ("random_forest", "svm"), "observables": ("weight", "act", "grad", "all")}
TRAJECTORIES = ("full", "average")


def add_arguments(parser):
    """No options beyond the common ones."""


def run(data=None, *, classifier=None, observables=None, n_splits=10, random_state=0, n_jobs=1, out=None, **options):
    """Accuracy on the full and on the averaged trajectory.

    Parameters
    ----------
    data, classifier, observables, n_splits, random_state, n_jobs, out, **options :
        See :func:`lrid_analysis.experiments.separability.run`; default
        classifiers random_forest and svm.

    Returns
    -------
    ExperimentResult
        ``table``: one row per (classifier, observables, trajectory, split).
    """
    ctx = prepare(NAME, data, classifier=classifier, observables=observables,
                  default_classifiers=DEFAULTS["classifiers"], default_observables=DEFAULTS["observables"],
                  n_splits=n_splits, random_state=random_state, n_jobs=n_jobs, out=out, **options)
    pairs, names = ctx.balanced_pairs()
    conditions = []
    for label in ctx.classifiers:
        for obs in ctx.observable_sets:
            sub, X_full = ctx.features(obs)
            averaged = features.average(sub)
            for trajectory, part, X in (("full", sub, X_full),
                                        ("average", averaged, features.trajectories(averaged, check=False))):
                key = {"classifier": label, "observables": obs, "trajectory": trajectory}
                conditions.append(ctx.condition(key, ctx.classifier(label), X, sub.y, pairs, names))
    table, _ = ctx.evaluate(conditions)
    summary = summarize(table, ["classifier", "observables", "trajectory"])
    comparisons = compare(table, "trajectory", within=["classifier", "observables"], reference="full",
                          family="average vs full trajectory")
    def draw():
        return plots.accuracy_bars(summary, x="observables", hue="trajectory", panel="classifier",
                                     hue_order=list(TRAJECTORIES), chance=ctx.chance,
                                     title="Full trajectory vs trajectory average", x_label="observable set")
    return ctx.finish(table, summary, comparisons, draw)


def main(args):
    """Command-line entry: ``python -m lrid_analysis.experiments trajectory_average``."""
    return run(args.data, **cli_kwargs(args, NAME))
