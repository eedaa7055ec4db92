"""Confusion: mean test confusion matrices per classifier on all observables (Fig. 2c).

Every classifier is evaluated on the category-balanced splits; the test
confusion matrix of every split is normalised by row (the proportion of each
actual rule predicted as each rule) and averaged over splits. The paper's
reading, that Adam and SGDM are confused more often than FA and IA, is
tested on the per-split rate of confusion within each pair of rules
(``(C[a, b] + C[b, a]) / (n_a + n_b)``).
"""

from __future__ import annotations

import json
from itertools import combinations

import numpy as np
import pandas as pd

from .. import metrics, plots, stats
from .cli import cli_kwargs
from .context import prepare
from .summaries import compare, summarize

NAME = "confusion"
DESCRIPTION = "mean test confusion matrices per classifier on all observables (Fig. 2c)"
DETAILS = """
For each classifier, the test confusion matrices of --splits category-balanced splits,
row-normalised (rows: actual rule, columns: predicted) and averaged. Also reports how
often each pair of rules is confused and compares those rates (e.g. Adam/SGDM against
FA/IA). Default classifiers: random forest, linear SVM, Conv1D MLP (--quick: the random
forest); default observables: all.
"""
EXAMPLES = ("python -m lrid_analysis.experiments confusion --quick",)
DEFAULTS = {"classifiers": ("random_forest", "svm", "conv1d"), "observables": ("all",)}


def add_arguments(parser):
    """``--label-order``: the class order of the matrices and per-class metrics."""
    parser.add_argument("--label-order", choices=("sorted", "original"), default="sorted",
                        help="class order of the matrices and metrics: sorted (lrid) or the original project's "
                             "(adam, sgdm, information, feedback)")


def class_metrics(table, labels, by=("classifier", "observables")):
    """Per-class metrics of each condition under both conventions.

    Parameters
    ----------
    table : pandas.DataFrame
        Per-split rows with a ``confusion`` column (JSON, rows actual, in
        ``labels`` order).
    labels : list of str
    by : sequence of str
        Condition columns.

    Returns
    -------
    pandas.DataFrame
        One row per (condition, class): ``recall_mean`` (lrid's balanced
        accuracy is the mean of these over classes, also given as
        ``mean_recall`` on every row), the original's per-class
        ``balanced_accuracy_original`` ((sensitivity + specificity) / 2 of
        the split-mean confusion matrix), ``dprime_mean_of_splits`` (lrid:
        the mean of per-split d') and ``dprime_of_mean_confusion`` (the
        original's "mean d'": d' of the split-mean matrix).

    Examples
    --------
    >>> import json, pandas as pd
    >>> cm = json.dumps([[8, 2], [1, 9]])
    >>> t = pd.DataFrame({"classifier": ["rf", "rf"], "observables": ["all", "all"], "confusion": [cm, cm]})
    >>> m = class_metrics(t, ["adam", "sgdm"])
    >>> m[["label", "recall_mean", "balanced_accuracy_original"]].round(3).values.tolist()
    [['adam', 0.8, 0.85], ['sgdm', 0.9, 0.85]]
    """
    by = list(by)
    rows = []
    for keys, part in table.groupby(by, sort=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        cms = np.stack([np.asarray(json.loads(c), dtype=float) for c in part["confusion"]])
        mean_cm = cms.mean(axis=0)
        recalls = np.stack([np.diag(cm) / cm.sum(axis=1) for cm in cms]).mean(axis=0)
        original = metrics.per_class_balanced_accuracy(mean_cm)
        split_dprime = metrics.mean_split_dprime(cms)
        mean_dprime = metrics.dprime_of_mean_confusion(cms)
        for k, label in enumerate(labels):
            rows.append({**dict(zip(by, keys)), "label": label, "recall_mean": float(recalls[k]),
                         "mean_recall": float(metrics.mean_recall(mean_cm)),
                         "balanced_accuracy_original": float(original[k]),
                         "dprime_mean_of_splits": float(split_dprime[k]),
                         "dprime_of_mean_confusion": float(mean_dprime[k]), "n_splits": int(len(cms))})
    return pd.DataFrame(rows)


def confusion_tables(table, labels, by=("classifier", "observables")):
    """Tidy mean confusion matrices and per-split pair-confusion rates.

    Parameters
    ----------
    table : pandas.DataFrame
        Per-split rows with a ``confusion`` column (JSON, rows actual).
    labels : list of str
        Class order of the matrices.
    by : sequence of str
        Condition columns.

    Returns
    -------
    confusion : pandas.DataFrame
        One row per (condition, actual, predicted): ``count_mean``,
        ``proportion_mean``, ``proportion_sem`` (row-normalised, over splits).
    pairs : pandas.DataFrame
        One row per (condition, split, rule pair): ``rule_pair``,
        ``confusion_rate``, ``n_train``, ``n_test``.
    """
    by = list(by)
    cells, pair_rows = [], []
    for keys, part in table.groupby(by, sort=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        key = dict(zip(by, keys))
        matrices = np.stack([np.asarray(json.loads(c), dtype=float) for c in part["confusion"]])
        with np.errstate(divide="ignore", invalid="ignore"):
            proportions = matrices / matrices.sum(axis=2, keepdims=True)
        for i, actual in enumerate(labels):
            for j, predicted in enumerate(labels):
                mean, sem = stats.mean_sem(proportions[:, i, j])
                cells.append({**key, "actual": actual, "predicted": predicted,
                              "count_mean": float(matrices[:, i, j].mean()),
                              "proportion_mean": float(mean), "proportion_sem": float(sem)})
        for (i, a), (j, b) in combinations(enumerate(labels), 2):
            rates = (matrices[:, i, j] + matrices[:, j, i]) / (matrices[:, i].sum(axis=1) + matrices[:, j].sum(axis=1))
            for split, rate, n_train, n_test in zip(part["split"], rates, part["n_train"], part["n_test"]):
                pair_rows.append({**key, "split": int(split),
                                  "rule_pair": f"{plots.rule_label(a)}/{plots.rule_label(b)}",
                                  "confusion_rate": float(rate), "n_train": int(n_train), "n_test": int(n_test)})
    return pd.DataFrame(cells), pd.DataFrame(pair_rows)


def run(data=None, *, classifier=None, observables=None, n_splits=10, random_state=0, n_jobs=1, out=None,
        label_order="sorted", **options):
    """Mean confusion matrices of each classifier.

    Parameters
    ----------
    data, classifier, observables, n_splits, random_state, n_jobs, out, **options :
        See :func:`lrid_analysis.experiments.separability.run`; default
        observables: all.
    label_order : {"sorted", "original"}
        Class order of the matrices (:func:`lrid_analysis.metrics.label_order`).

    Returns
    -------
    ExperimentResult
        ``tables["matrices"]``: tidy mean confusion matrices;
        ``tables["pair_rates"]``: per-split confusion rate of every rule pair;
        ``tables["class_metrics"]``: :func:`class_metrics`.
    """
    ctx = prepare(NAME, data, classifier=classifier, observables=observables,
                  default_classifiers=DEFAULTS["classifiers"], default_observables=DEFAULTS["observables"],
                  n_splits=n_splits, random_state=random_state, n_jobs=n_jobs, out=out, **options)
    pairs, names = ctx.balanced_pairs()
    labels = metrics.label_order(ctx.view.y, label_order)
    conditions = []
    for label in ctx.classifiers:
        for obs in ctx.observable_sets:
            sub, X = ctx.features(obs)
            conditions.append(ctx.condition({"classifier": label, "observables": obs},
                                        ctx.classifier(label), X, sub.y, pairs, names,
                                        labels=labels))
    table, _ = ctx.evaluate(conditions)
    summary = summarize(table, ["classifier", "observables"])
    matrices, pair_rates = confusion_tables(table, labels)
    comparisons = [
        compare(table, "classifier", within=["observables"], reference="random_forest"),
        compare(pair_rates, "rule_pair", within=["classifier", "observables"], value="confusion_rate",
                family="confusion rate of rule pairs"),
    ]
    comparisons = [c for c in comparisons if not c.empty]
    def draw():
        panel = matrices.assign(panel=matrices["classifier"] + (
            " / " + matrices["observables"] if matrices["observables"].nunique() > 1 else ""))
        return plots.confusion_heatmaps(panel, panel="panel", labels=labels,
                                          title="Mean test confusion (row-normalised, % of actual rule)")
    return ctx.finish(table, summary, pd.concat(comparisons, ignore_index=True) if comparisons else None, draw,
                      tables={"matrices": matrices, "pair_rates": pair_rates,
                              "class_metrics": class_metrics(table, labels)})


def main(args):
    """Command-line entry: ``python -m lrid_analysis.experiments confusion``."""
    return run(args.data, label_order=args.label_order, **cli_kwargs(args, NAME))
