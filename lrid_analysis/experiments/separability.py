"""Separability: every classifier x observable set on category-balanced splits (Fig. 2a).

For each classifier and each observable set, the classifier is trained on
75% and tested on 25% of the trajectories of every rule, over ``n_splits``
category-balanced splits (the same splits for every condition, so scores
pair by split). The splits are drawn in both groupings by default (a
``grouping`` column): over layer trajectories (the paper's draw) and over
whole networks (no network in both train and test). Comparisons: each classifier against the random forest
within an observable set, and each observable set against ``all`` within a
classifier (corrected resampled t-tests, Holm within each family).

Where the data records the forward-Jacobian gradient (``--gradient auto``,
see :mod:`lrid_analysis.experiments.gradient`), the sets ``gradfwd`` and
``all_fwd`` run beside ``grad`` and ``all``, and a family ``gradfwd vs
gradavg`` compares ``gradfwd`` with ``grad`` and ``all_fwd`` with ``all``
(the ``vs all`` family keeps the paper's sets).
"""

from __future__ import annotations

import pandas as pd

from .. import plots
from ..observables import FORWARD_SETS
from ..splits import GROUPINGS
from .cli import cli_kwargs
from .context import prepare
from .gradient import (
    add_gradient_argument,
    gradient_comparisons,
    gradient_params,
    gradient_sets,
    resolve_gradient,
)
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
linear SVM and Conv1D MLP (--quick: only the random forest). On data that records the
forward-Jacobian gradient (generated data), the sets gradfwd and all_fwd run beside grad
and all, compared pairwise (family "gradfwd vs gradavg"; --gradient chooses).
"""
EXAMPLES = (
    "python -m lrid_analysis.experiments separability --quick",
    "python -m lrid_analysis.experiments separability --classifier random_forest,xgboost --splits 5",
    "python -m lrid_analysis.experiments separability --data runs/my_sweep --quick --gradient both",
)
GROUPINGS = (*GROUPINGS, "both")
GROUPING_DEFAULT = "both"
DEFAULTS = {"classifiers": ("random_forest", "svm", "conv1d"), "observables": ("weight", "act", "grad", "all")}


def add_arguments(parser):
    """``--gradient``."""
    add_gradient_argument(parser.add_argument_group("separability options"))


def run(data=None, *, classifier=None, observables=None, n_splits=10, random_state=0, n_jobs=1, out=None,
        grouping="both", gradient="auto", **options):
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
    gradient : {"auto", "gradavg", "gradfwd", "both"}
        The gradient of the sets ``grad`` and ``all`` (see
        :mod:`lrid_analysis.experiments.gradient`); ``auto``: both where the
        data records ``gradfwd``, else ``gradavg`` (the paper).
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
    gradient = resolve_gradient(gradient, data, options.get("filters"), options.get("verbose", True))
    sets = gradient_sets(DEFAULTS["observables"] if observables is None else observables, gradient)
    ctx = prepare(NAME, data, classifier=classifier, observables=sets,
                  default_classifiers=DEFAULTS["classifiers"], default_observables=DEFAULTS["observables"],
                  n_splits=n_splits, random_state=random_state, n_jobs=n_jobs, out=out,
                  extra_params={"grouping": grouping, **gradient_params(gradient)}, **options)
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
                                                ctx.classifier(label), X, sub.y, pairs, names))
    table, _ = ctx.evaluate(conditions)
    summary = summarize(table, ["grouping", "classifier", "observables"])
    # the vs-all family over the sets of one gradient (the paper's, unless only gradfwd ran)
    paper = table[~table["observables"].isin(list(FORWARD_SETS.values()))] if gradient == "both" else table
    comparisons = [
        compare(table, "classifier", within=["grouping", "observables"], reference="random_forest"),
        compare(paper, "observables", within=["grouping", "classifier"],
                reference="all_fwd" if gradient == "gradfwd" else "all"),
        gradient_comparisons(table, within=["grouping", "classifier"]) if gradient == "both" else pd.DataFrame(),
    ]
    comparisons = [c for c in comparisons if not c.empty]
    def draw():
        return plots.accuracy_bars(summary, x="observables", hue="classifier", chance=ctx.chance,
                                   panel="grouping" if len(groupings) > 1 else None,
                                   title=f"Separability: category-balanced splits over {' and '.join(g + 's' for g in groupings)}",
                                   x_label="observable set")
    return ctx.finish(table, summary, pd.concat(comparisons, ignore_index=True) if comparisons else None, draw)


def main(args):
    """Command-line entry: ``python -m lrid_analysis.experiments separability``."""
    return run(args.data, gradient=args.gradient, **cli_kwargs(args, NAME))
