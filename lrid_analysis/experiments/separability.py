"""Separability: every classifier x observable set on category-balanced splits (Fig. 2a).

For each classifier and each observable set, the classifier is trained on
75% and tested on 25% of the trajectories of every rule, over ``n_splits``
category-balanced splits (the same splits for every condition, so scores
pair by split). The splits are drawn in both groupings by default (a
``grouping`` column): over layer trajectories (the paper's draw) and over
whole networks (no network in both train and test). Comparisons: each classifier against the random forest
within an observable set, and each observable set against ``all`` within a
classifier (corrected resampled t-tests, Holm within each family).
"""

from __future__ import annotations

import pandas as pd

from .. import plots
from ..splits import GROUPINGS
from .cli import cli_kwargs
from .context import prepare
from .options import ExperimentError
from .splitting import category_balanced_pairs
from .summaries import compare, summarize

NAME = "separability"
DESCRIPTION = "every classifier x observable set on category-balanced 75/25 splits (Fig. 2a)"
DETAILS = """
For each classifier and observable set (weight, act, grad, all), train on 75% and test
on 25% of every rule's trajectories, over --splits category-balanced splits, and report
the test accuracy (mean ± s.e.m.). The splits are drawn twice (--grouping both, the
default): over layer trajectories (trajectory, the paper's draw: layers of one network
fall in train and test) and over whole networks (network: the question of an
experimentalist recording new animals). Default classifiers: the paper's random forest,
linear SVM and Conv1D MLP (--quick: only the random forest).
"""
EXAMPLES = (
    "python -m lrid_analysis.experiments separability --quick",
    "python -m lrid_analysis.experiments separability --classifier random_forest,xgboost --splits 5",
)
GROUPINGS = (*GROUPINGS, "both")
GROUPING_DEFAULT = "both"
DEFAULTS = {"classifiers": ("random_forest", "svm", "conv1d"), "observables": ("weight", "act", "grad", "all")}


def add_arguments(parser):
    """No options beyond the common ones."""


def run(data=None, *, classifier=None, observables=None, n_splits=10, random_state=0, n_jobs=1, out=None,
        grouping="both", **options):
    """Accuracy of every classifier on every observable set.

    Parameters
    ----------
    data : None, "auto", "public", "embedded", path, DataFrame or AnalysisView
    classifier : str, estimator, dict or list, optional
        Registry names, ``package.module:Name`` or ``file.py:Name`` strings,
        estimators, a ``{label: estimator}`` dict or (label, estimator)
        pairs. Default: random_forest, svm, conv1d.
    observables : str or list, optional
        Default: weight, act, grad, all.
    n_splits, random_state, n_jobs : int
        ``seed=`` is accepted as a deprecated alias of ``random_state``.
    grouping : {"both", "trajectory", "network"}
        Units of the category-balanced splits: layer trajectories (the
        paper), whole networks, or both (default; a ``grouping`` column).
    out : str or Path, optional
        Output folder; nothing is written when None.
    **options
        filters, params, selection, resume, overwrite, formats, verbose,
        progress, plot (see :func:`lrid_analysis.experiments.context.prepare`).

    Returns
    -------
    ExperimentResult
        ``table``: one row per (grouping, classifier, observables, split).
    """
    if grouping not in GROUPINGS:
        raise ExperimentError(f"unknown grouping {grouping!r}; use one of {', '.join(GROUPINGS)}")
    groupings = [g for g in GROUPINGS[:-1] if grouping in (g, "both")]
    ctx = prepare(NAME, data, classifier=classifier, observables=observables,
                  default_classifiers=DEFAULTS["classifiers"], default_observables=DEFAULTS["observables"],
                  n_splits=n_splits, random_state=random_state, n_jobs=n_jobs, out=out,
                  extra_params={"grouping": grouping}, **options)
    conditions = []
    drawn = {}
    for unit in groupings:
        try:
            drawn[unit] = category_balanced_pairs(ctx.view, ctx.n_splits, ctx.random_state, unit)
        except ExperimentError as err:
            if grouping != "both" or unit == "trajectory":
                raise
            if ctx.verbose:  # e.g. a sweep with one network per rule: no network-grouped split exists
                print(f"note: no network-grouped splits, reporting the trajectory grouping only ({err})")
    groupings = list(drawn)
    for unit, (pairs, names) in drawn.items():
        for label in ctx.classifiers:
            for obs in ctx.observable_sets:
                sub, X = ctx.features(obs)
                conditions.append(ctx.condition({"grouping": unit, "classifier": label, "observables": obs},
                                                ctx.classifier(label, sub.X.shape[1]), X, sub.y, pairs, names))
    table, _ = ctx.evaluate(conditions)
    summary = summarize(table, ["grouping", "classifier", "observables"])
    comparisons = [
        compare(table, "classifier", within=["grouping", "observables"], reference="random_forest"),
        compare(table, "observables", within=["grouping", "classifier"], reference="all"),
    ]
    comparisons = [c for c in comparisons if not c.empty]
    def draw():
        return plots.accuracy_bars(summary, x="observables", hue="classifier", chance=ctx.chance,
                                   panel="grouping" if len(groupings) > 1 else None,
                                   title=f"Separability: category-balanced splits over {' and '.join(groupings)}s",
                                   x_label="observable set")
    return ctx.finish(table, summary, pd.concat(comparisons, ignore_index=True) if comparisons else None, draw)


def main(args):
    """Command-line entry: ``python -m lrid_analysis.experiments separability``."""
    return run(args.data, **cli_kwargs(args, NAME))
