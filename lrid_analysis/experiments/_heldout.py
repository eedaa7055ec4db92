"""Shared code of the held-out experiments (Fig. 2b): architecture, curriculum, task.

For each observable set, one fold per held-out value (train on all other
values, test on the held-out one, rule-balanced; see
:class:`lrid_analysis.splits.HeldOutSplit`). The reference line is the
category-balanced accuracy on all observables (Fig. 2a, red line of 2b).

Statistics
    * held-out vs reference, per observable set: the mean held-out accuracy
      over the K folds against the reference mean over J category-balanced
      splits. The two are not paired, so this is a Welch-type t-test whose
      reference variance carries the Nadeau-Bengio correction for
      overlapping resampled training sets, ``se_ref^2 = (1/J + n_test /
      n_train) var(ref)``, while the held-out folds (disjoint test sets)
      use ``var(heldout) / K``; Welch-Satterthwaite degrees of freedom;
      Holm over the observable sets.
    * observable sets against ``all``, paired by held-out fold
      (:func:`lrid_analysis.stats.compare_conditions` with the fold as the
      pairing unit, Holm).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from .. import plots, stats
from ..observables import resolve_observables
from .cli import cli_kwargs
from .context import prepare
from .splitting import materialise
from .summaries import compare, summarize

DEFAULTS = {"classifiers": ("random_forest",), "observables": ("weight", "act", "grad", "all")}
REFERENCE_LABEL = "category-balanced (all)"
MEAN_LABEL = "mean"


def add_arguments(parser):
    """``--no-reference``."""
    group = parser.add_argument_group("held-out options")
    group.add_argument("--no-reference", action="store_true",
                       help="skip the category-balanced reference (all observables)")


def welch_vs_reference(heldout, reference, n_train, n_test):
    """Welch-type t-test of held-out fold scores against resampled reference scores.

    Parameters
    ----------
    heldout : array-like, shape (K,)
        One score per held-out fold.
    reference : array-like, shape (J,)
        One score per category-balanced split.
    n_train, n_test : float
        Rows per reference split (for the Nadeau-Bengio correction).

    Returns
    -------
    t, df, p : float
        Two-sided; NaN with fewer than two values on either side.
    """
    a, b = np.asarray(heldout, dtype=float), np.asarray(reference, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return float("nan"), float("nan"), float("nan")
    va = a.var(ddof=1) / len(a)
    vb = (1.0 / len(b) + n_test / n_train) * b.var(ddof=1)
    se2 = va + vb
    if se2 == 0:
        diff = a.mean() - b.mean()
        return (float("nan"), float("nan"), float("nan")) if diff == 0 else (float(np.sign(diff) * np.inf), float("nan"), 0.0)
    t = (a.mean() - b.mean()) / np.sqrt(se2)
    df = se2**2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return float(t), float(df), float(2.0 * scipy_stats.t.sf(abs(t), df))


def run_heldout(name, splitter_class, held_out, data=None, *, classifier=None, observables=None, n_splits=10,
                random_state=0, n_jobs=1, out=None, reference=True, **options):
    """Held-out accuracy per observable set and held-out value, with the category-balanced reference.

    Parameters
    ----------
    name : str
        Experiment name.
    splitter_class : type
        :class:`~lrid_analysis.splits.HeldOutArchitecture`,
        :class:`~lrid_analysis.splits.HeldOutCurriculum` or
        :class:`~lrid_analysis.splits.HeldOutTask`.
    held_out : str
        What is held out, for labels (``architecture``, ...).
    reference : bool
        Also run the category-balanced reference on all observables.
    data, classifier, observables, n_splits, random_state, n_jobs, out, **options :
        See :func:`lrid_analysis.experiments.separability.run`; ``n_splits``
        is the number of reference splits.

    Returns
    -------
    ExperimentResult
        ``table``: one row per (kind, observables, fold), ``kind`` being
        ``heldout`` (``fold`` = held-out value) or ``reference``.
    """
    all_names = resolve_observables("all")
    ctx = prepare(name, data, classifier=classifier, observables=observables,
                  default_classifiers=DEFAULTS["classifiers"], default_observables=DEFAULTS["observables"],
                  n_splits=n_splits, random_state=random_state, n_jobs=n_jobs, out=out, need_observables=all_names if reference else None,
                  extra_params={"held_out": held_out, "reference": bool(reference)}, **options)
    splitter = splitter_class(random_state=int(ctx.random_state), meta=ctx.view.meta)
    pairs, folds = materialise(splitter, ctx.view, f"cannot hold out by {held_out}")
    ref_pairs, ref_names = ctx.balanced_pairs() if reference else (None, None)
    conditions = []
    for label in ctx.classifiers:
        for obs in ctx.observable_sets:
            sub, X = ctx.features(obs)
            conditions.append(ctx.condition({"kind": "heldout", "classifier": label, "observables": obs},
                                        ctx.classifier(label), X, sub.y, pairs, folds))
        if reference:
            sub, X = ctx.features(all_names)
            conditions.append(ctx.condition({"kind": "reference", "classifier": label, "observables": "all"},
                                        ctx.classifier(label), X, sub.y, ref_pairs, ref_names))
    table, _ = ctx.evaluate(conditions)
    table.insert(3, held_out, np.where(table["kind"] == "heldout", table["fold"], REFERENCE_LABEL))

    heldout_rows = table[table["kind"] == "heldout"]
    ref_rows = table[table["kind"] == "reference"]
    per_value = summarize(heldout_rows, ["kind", "classifier", "observables", held_out])
    per_set = summarize(heldout_rows, ["kind", "classifier", "observables"]).assign(**{held_out: MEAN_LABEL})
    per_set["kind"] = "heldout_mean"
    parts = [per_value, per_set]
    ref_lines = {}
    if reference:
        ref_summary = summarize(ref_rows, ["kind", "classifier", "observables"]).assign(**{held_out: REFERENCE_LABEL})
        parts.append(ref_summary)
        ref_lines = {row["classifier"]: (float(row["accuracy_mean"]), float(row["accuracy_sem"]))
                     for _, row in ref_summary.iterrows()}
    summary = pd.concat(parts, ignore_index=True)[["kind", "classifier", "observables", held_out, "accuracy_mean",
                                                  "accuracy_sem", "n_splits"]]

    comparisons = []
    if reference:
        rows = []
        for (label, obs), part in heldout_rows.groupby(["classifier", "observables"], sort=False):
            ref = ref_rows[ref_rows["classifier"] == label]
            ref_scores = ref["test_accuracy"].to_numpy()
            t, df, p = welch_vs_reference(part["test_accuracy"], ref_scores, ref["n_train"].mean(),
                                          ref["n_test"].mean())
            rows.append({"family": "held-out vs reference", "compared": "kind",
                         "group": f"classifier={label}, observables={obs}", "classifier": label, "observables": obs,
                         "condition_a": f"held-out {held_out}", "condition_b": REFERENCE_LABEL,
                         "mean_a": float(part["test_accuracy"].mean()), "mean_b": float(ref_scores.mean()),
                         "difference": float(part["test_accuracy"].mean() - ref_scores.mean()),
                         "t": t, "df": df, "p": p, "n_splits": len(part)})
        frame = pd.DataFrame(rows)
        frame["reject"], frame["p_holm"] = False, np.nan
        for _, part in frame.groupby("classifier", sort=False):  # one family per classifier
            reject, adjusted = stats.holm(part["p"].to_numpy())
            frame.loc[part.index, "reject"], frame.loc[part.index, "p_holm"] = reject, adjusted
        comparisons.append(frame)
    by_set = compare(heldout_rows, "observables", within=["classifier"], reference="all", split_col="fold",
                     family="observable sets vs all (paired by held-out value)")
    if not by_set.empty:
        comparisons.append(by_set)

    def draw():
        bars = summary[summary["kind"] != "reference"]
        several = len(ctx.classifiers) > 1
        return plots.accuracy_bars(
            bars, x=held_out, hue="observables", panel="classifier" if several else None, chance=ctx.chance,
            reference=ref_lines if several else ref_lines.get(next(iter(ctx.classifiers))),
            reference_label=f"{REFERENCE_LABEL} ± s.e.m.", x_order=list(folds) + [MEAN_LABEL],
            title=f"Held-out {held_out}" + ("" if several else f" ({next(iter(ctx.classifiers))})"),
            x_label=f"held-out {held_out}")
    return ctx.finish(table, summary, pd.concat(comparisons, ignore_index=True) if comparisons else None, draw)


def heldout_experiment(name, splitter, key, what):
    """The ``run`` and ``main`` functions of one held-out experiment module.

    Parameters
    ----------
    name : str
        Experiment name (``heldout_task``, ...).
    splitter : type
        :class:`~lrid_analysis.splits.HeldOutSplit` subclass.
    key : str
        Metadata column held out.
    what : str
        Plural noun for the docstring ("tasks").

    Returns
    -------
    run, main : callable
    """

    def run(data=None, *, classifier=None, observables=None, n_splits=10, random_state=0, n_jobs=1, out=None,
            reference=True, **options):
        return run_heldout(name, splitter, key, data, classifier=classifier, observables=observables,
                           n_splits=n_splits, random_state=random_state, n_jobs=n_jobs, out=out, reference=reference, **options)

    run.__doc__ = f"""Held-out {key} accuracy per observable set, with the category-balanced reference.

    One fold per {key}: train on all other {what}, test on the held-out one.

    Parameters
    ----------
    data : None, "auto", "public", "embedded", path, DataFrame or AnalysisView
    classifier : str, list or estimator, optional
        Default: random_forest; several give a panel each.
    observables : str or list, optional
        Default: weight, act, grad, all.
    n_splits : int
        Category-balanced splits of the reference.
    random_state, n_jobs : int
    out : str or Path, optional
    reference : bool
    **options
        filters, params, selection, resume, verbose, progress, plot.

    Returns
    -------
    ExperimentResult
        See :func:`lrid_analysis.experiments._heldout.run_heldout`.
    """

    def main(args):
        return run(args.data, reference=not args.no_reference, **cli_kwargs(args, name))

    main.__doc__ = f"Command-line entry: ``python -m lrid_analysis.experiments {name}``."
    return run, main
