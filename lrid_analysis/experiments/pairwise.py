"""Pairwise: separate every pair of learning rules (Fig. S1).

For each of the six pairs of rules, the data is restricted to the two
rules and the classifier is evaluated on binary category-balanced splits
(75% / 25% of the smaller rule's trajectories; chance is 50%), per
observable set. Comparisons: within each rule pair, every observable set
against ``all``, paired by split.
"""

from __future__ import annotations

from itertools import combinations

from .. import plots
from .cli import cli_kwargs
from .context import prepare
from .summaries import compare, summarize

NAME = "pairwise"
DESCRIPTION = "every pair of learning rules on binary category-balanced splits (Fig. S1)"
DETAILS = """
For each pair of rules (six for four rules), keeps the two rules' trajectories and
evaluates the classifier on binary category-balanced splits, per observable set.
Chance is 50%.
"""
EXAMPLES = ("python -m lrid_analysis.experiments pairwise",
            "python -m lrid_analysis.experiments pairwise --classifier svm --observables act")
DEFAULTS = {"classifiers": ("random_forest",), "observables": ("weight", "act", "grad", "all")}


def add_arguments(parser):
    """No options beyond the common ones."""


def pair_label(a, b):
    """``"Adam vs SGDM"``-style label of a rule pair."""
    return f"{plots.rule_label(a)} vs {plots.rule_label(b)}"


def run(data=None, *, classifier=None, observables=None, n_splits=10, random_state=0, n_jobs=1, out=None, **options):
    """Binary accuracy for every pair of rules, classifier and observable set.

    Parameters
    ----------
    data, classifier, observables, n_splits, random_state, n_jobs, out, **options :
        See :func:`lrid_analysis.experiments.separability.run`; default
        classifier random_forest.

    Returns
    -------
    ExperimentResult
        ``table``: one row per (classifier, rule_pair, observables, split).
    """
    ctx = prepare(NAME, data, classifier=classifier, observables=observables,
                  default_classifiers=DEFAULTS["classifiers"], default_observables=DEFAULTS["observables"],
                  n_splits=n_splits, random_state=random_state, n_jobs=n_jobs, out=out, **options)
    rules = sorted(set(ctx.view.y))
    conditions = []
    for a, b in combinations(rules, 2):
        subset = ctx.view.subset(ctx.view.meta["learning_rule"].isin([a, b]).to_numpy())
        pairs, names = ctx.balanced_pairs(subset)
        for label in ctx.classifiers:
            for obs in ctx.observable_sets:
                sub, X = ctx.features(obs, view=subset)
                key = {"classifier": label, "rule_pair": pair_label(a, b), "rule_a": a, "rule_b": b,
                       "observables": obs}
                conditions.append(ctx.condition(key, ctx.classifier(label), X, sub.y, pairs, names,
                                                view=subset, labels=[a, b]))
    table, _ = ctx.evaluate(conditions)
    summary = summarize(table, ["classifier", "rule_pair", "observables"])
    comparisons = compare(table, "observables", within=["classifier", "rule_pair"], reference="all",
                          family="observable sets vs all")
    def draw():
        return plots.accuracy_bars(summary, x="rule_pair", hue="observables",
                                     panel="classifier" if len(ctx.classifiers) > 1 else None, chance=0.5,
                                     title="Pairs of learning rules", x_label="rule pair")
    return ctx.finish(table, summary, comparisons, draw)


def main(args):
    """Command-line entry: ``python -m lrid_analysis.experiments pairwise``."""
    return run(args.data, **cli_kwargs(args, NAME))
