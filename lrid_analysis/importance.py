"""Which statistics a classifier relies on: grouped Gini and permutation importance.

Both work on groups of features: a statistic's whole trajectory, a whole
measure (weight / act / grad), or the layer-position one-hot (group
``"layer_position"``); see :func:`lrid_analysis.features.feature_groups`.
Gini importance reads a forest fitted on the flat layout of
:func:`lrid_analysis.features.flatten` (groups of its columns);
permutation importance takes either layout: flat ``X`` with column groups,
or trajectory ``X`` of :func:`lrid_analysis.features.trajectories` with
groups of its channels (the last axis; ``feature_groups(observables)``),
where a permuted channel carries its whole trajectory.

:func:`gini_importance`
    Mean decrease in Gini impurity of a random forest (Fig. 3 of Nayebi et
    al. 2020), summed over each group's columns, per tree; mean and s.e.m.
    over all trees of the forests of all splits.
:func:`permutation_importance`
    Drop in test score when the rows of a group's columns are permuted
    together (one row permutation applied to every column of the group, so a
    trajectory stays whole), on the test part of each split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.metrics import get_scorer
from sklearn.pipeline import Pipeline

from .features import feature_groups
from .observables import KNOWN_NAMES, measure_group

__all__ = ["forest_of", "gini_importance", "permutation_importance", "summarize_importance"]

_POSITION_GROUP = "layer_position"
_MEASURES = frozenset(measure_group(name) for name in KNOWN_NAMES)  # weight, act, grad, gradfwd


def _is_forest(estimator):
    trees = getattr(estimator, "estimators_", None)
    return (
        isinstance(trees, list) and len(trees) > 0 and all(hasattr(t, "tree_") for t in trees)
    )


def forest_of(estimator):
    """The fitted tree ensemble inside an estimator.

    Parameters
    ----------
    estimator : fitted estimator
        A forest (``estimators_`` a list of fitted trees), a selection wrapper
        exposing it as ``best_estimator_`` (e.g.
        :class:`~lrid_analysis.classifiers.OOBForestSelection`,
        :class:`~sklearn.model_selection.GridSearchCV`), or a pipeline ending
        in one.

    Returns
    -------
    forest : fitted ensemble of decision trees

    Raises
    ------
    TypeError
        When no fitted forest can be found.
    """
    current = estimator
    for _ in range(16):
        if _is_forest(current):
            return current
        if isinstance(current, Pipeline):
            current = current[-1]
            continue
        inner = next((getattr(current, a) for a in ("best_estimator_", "forest_", "estimator_")
                      if hasattr(current, a)), None)
        if inner is None:
            break
        current = inner
    raise TypeError(
        f"no fitted forest in {type(estimator).__name__}: Gini importance needs a fitted tree ensemble "
        "(estimators_ of decision trees) or a wrapper exposing one as best_estimator_"
    )


def _as_list(estimators):
    if isinstance(estimators, (list, tuple)):
        if not estimators:
            raise ValueError("no estimators given")
        return list(estimators)
    return [estimators]


def _group_measure(name):
    if name == _POSITION_GROUP:
        return _POSITION_GROUP
    if name in _MEASURES:
        return name
    return measure_group(name)


def _maybe_measure(name):
    """The measure of a group name, or None for a custom group."""
    try:
        return _group_measure(name)
    except ValueError:
        return None


def _layout_groups(observables, n_checkpoints, n_categorical, by):
    if n_categorical not in (0, 3):
        raise ValueError(
            f"n_categorical must be 3 (layer-position one-hot last) or 0 (no one-hot), got {n_categorical}"
        )
    return feature_groups(observables, n_checkpoints, include_position=n_categorical == 3, by=by)


def _sem(values, axis=0):
    values = np.asarray(values, dtype=float)
    n = values.shape[axis]
    if n < 2:
        return np.full(np.delete(values.shape, axis), np.nan)
    return values.std(axis=axis, ddof=1) / np.sqrt(n)


def gini_importance(forests, observables, n_checkpoints, n_categorical=3, by="statistic", per_split=False):
    """Gini importance of each statistic's trajectory, per tree, over trees and splits.

    Each tree's impurity-based importances (normalized to sum to 1 per tree,
    as in scikit-learn) are summed over the columns of each group; trees that
    are a single leaf are skipped, as scikit-learn does. The group
    importances of a forest therefore sum to 1.

    Parameters
    ----------
    forests : fitted estimator or sequence of them
        One per split: forests or wrappers (see :func:`forest_of`).
    observables : str or sequence of str
        The observables of the flat layout, in column order.
    n_checkpoints : int
    n_categorical : {3, 0}
        Whether the layout ends with the layer-position one-hot.
    by : {"statistic", "measure"}
        Group columns by statistic (trajectory) or by measure.
    per_split : bool
        Return one row per (split, group) instead of one per group.

    Returns
    -------
    pandas.DataFrame
        One row per group in layout order (or per split and group) with
        ``group``, ``measure``, ``n_columns``, ``importance_mean`` (mean over
        all trees of all forests), ``importance_sem`` (s.e.m. over those
        trees), ``importance_sem_splits`` (s.e.m. of the per-split means;
        NaN for one split), ``n_trees`` and ``n_splits``. With
        ``per_split``: ``split``, ``group``, ``measure``, ``n_columns``,
        ``importance_mean``, ``importance_sem`` (over that forest's trees)
        and ``n_trees``.
    """
    groups = _layout_groups(observables, n_checkpoints, n_categorical, by)
    n_columns = sum(len(c) for c in groups.values())
    per_tree = []  # per split: (n_trees, n_groups)
    for split, estimator in enumerate(_as_list(forests)):
        forest = forest_of(estimator)
        n_features = getattr(forest, "n_features_in_", None)
        if n_features != n_columns:
            raise ValueError(
                f"forest of split {split} has {n_features} features, but {len(groups)} groups of the layout "
                f"(observables, n_checkpoints={n_checkpoints}, n_categorical={n_categorical}) cover {n_columns}"
            )
        trees = [t.feature_importances_ for t in forest.estimators_ if t.tree_.node_count > 1]
        if not trees:
            trees = [np.zeros(n_features)]
        trees = np.asarray(trees)
        per_tree.append(np.stack([trees[:, cols].sum(axis=1) for cols in groups.values()], axis=1))
    names = list(groups)
    base = {"group": names, "measure": [_group_measure(g) for g in names],
            "n_columns": [len(groups[g]) for g in names]}
    if per_split:
        frames = [
            pd.DataFrame({"split": s, **base, "importance_mean": imp.mean(axis=0),
                          "importance_sem": _sem(imp), "n_trees": len(imp)})
            for s, imp in enumerate(per_tree)
        ]
        return pd.concat(frames, ignore_index=True)
    pooled = np.concatenate(per_tree, axis=0)
    split_means = np.stack([imp.mean(axis=0) for imp in per_tree])
    return pd.DataFrame({**base, "importance_mean": pooled.mean(axis=0), "importance_sem": _sem(pooled),
                         "importance_sem_splits": _sem(split_means), "n_trees": len(pooled),
                         "n_splits": len(per_tree)})


def _test_index(split, n_samples, where):
    pair = isinstance(split, (tuple, list)) and len(split) == 2 and all(np.ndim(part) == 1 for part in split)
    test = np.asarray(split[1] if pair else split)
    if test.dtype == bool:
        if test.shape != (n_samples,):
            raise ValueError(f"{where}: boolean test mask has shape {test.shape}, X has {n_samples} rows")
        test = np.flatnonzero(test)
    if test.ndim != 1 or len(test) == 0 or not np.issubdtype(test.dtype, np.integer):
        raise ValueError(f"{where}: test indices must be a non-empty 1-D integer array")
    if test.min() < -n_samples or test.max() >= n_samples:
        raise ValueError(f"{where}: test indices out of range for X with {n_samples} rows")
    return test


def _check_groups(groups, n_features):
    if not isinstance(groups, dict) or not groups:
        raise ValueError(
            "groups must be a non-empty dict of name -> column indices, e.g. "
            "lrid_analysis.features.feature_groups(observables, n_checkpoints)"
        )
    out = {}
    for name, cols in groups.items():
        cols = np.asarray(cols, dtype=np.int64).ravel()
        if len(cols) == 0:
            raise ValueError(f"group {name!r} has no columns")
        if cols.min() < 0 or cols.max() >= n_features:
            raise ValueError(f"group {name!r} has column(s) outside 0..{n_features - 1}")
        out[name] = cols
    return out


def _permuted_scores(estimator, scorer, X_test, y_test, cols, permutations):
    X_perm = X_test.copy()
    scores = []
    for perm in permutations:
        X_perm[..., cols] = X_test[perm][..., cols]
        scores.append(scorer(estimator, X_perm, y_test))
    return scores


def permutation_importance(estimators, X, y, splits, groups, n_repeats=5, random_state=0, scoring="accuracy",
                           n_jobs=1, seed=None):
    """Drop in test score when a whole group of columns is permuted across rows.

    For split ``s`` and repeat ``r`` one permutation of the test rows is
    drawn (``numpy.random.default_rng([random_state, s, r])``) and applied to every
    column of a group at once, so each permuted row carries another row's
    whole trajectory; the same permutations serve every group (paired
    comparison).

    Parameters
    ----------
    estimators : fitted estimator or sequence of them
        One per split, each fitted on that split's training rows.
    X : array-like of shape (n_samples, n_features) or (n_samples, n_checkpoints, n_channels)
        Flat features, or trajectory features (the groups then index
        channels, the last axis).
    y : array-like of shape (n_samples,)
    splits : sequence of (train, test) index pairs or of test indices
        Same length and order as ``estimators``; only the test rows are used.
    groups : dict of str to array of int
        Column indices per group, e.g.
        ``features.feature_groups(observables, n_checkpoints, by="statistic")``
        or ``by="measure"`` for whole measures; for trajectory ``X``, channel
        indices: ``features.feature_groups(observables, by=...)``.
    n_repeats : int
        Permutations per split and group.
    random_state : int
        Seed of the permutations.
    scoring : str or callable
        A scikit-learn scorer name or ``scorer(estimator, X, y) -> float``.
    n_jobs : int
        Groups scored in parallel (threads).
    seed : int, optional
        Deprecated alias of ``random_state``.

    Returns
    -------
    pandas.DataFrame
        One row per (split, group): ``split``, ``group``, ``measure``
        (``weight`` / ``act`` / ``grad`` / ``layer_position``, None for a
        custom group), ``n_columns``, ``baseline`` (unpermuted score), ``permuted_mean``, ``permuted_std``
        (over repeats), ``importance`` (= baseline - permuted_mean),
        ``n_repeats``, ``n_test``.
    """
    if seed is not None:
        random_state = seed
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim not in (2, 3) or len(y) != len(X):
        raise ValueError(f"X must be 2-D (flat) or 3-D (trajectories) with one row per label; got X {X.shape} "
                         f"and y {y.shape}")
    if int(n_repeats) < 1:
        raise ValueError(f"n_repeats must be >= 1, got {n_repeats}")
    estimators = _as_list(estimators)
    splits = list(splits)
    if len(splits) != len(estimators):
        raise ValueError(f"got {len(estimators)} estimator(s) for {len(splits)} split(s); pass one per split")
    groups = _check_groups(groups, X.shape[-1])
    scorer = get_scorer(scoring) if isinstance(scoring, str) else scoring
    rows = []
    for s, (estimator, split) in enumerate(zip(estimators, splits)):
        test = _test_index(split, len(X), f"split {s}")
        X_test, y_test = X[test], y[test]
        baseline = scorer(estimator, X_test, y_test)
        permutations = [np.random.default_rng([int(random_state), s, r]).permutation(len(test))
                        for r in range(int(n_repeats))]
        scores = Parallel(n_jobs=n_jobs, prefer="threads")(
            delayed(_permuted_scores)(estimator, scorer, X_test, y_test, cols, permutations)
            for cols in groups.values()
        )
        for (name, cols), permuted in zip(groups.items(), scores):
            permuted = np.asarray(permuted, dtype=float)
            rows.append({"split": s, "group": name, "measure": _maybe_measure(name), "n_columns": len(cols),
                         "baseline": float(baseline),
                         "permuted_mean": permuted.mean(), "permuted_std": permuted.std(),
                         "importance": float(baseline) - permuted.mean(), "n_repeats": int(n_repeats),
                         "n_test": len(test)})
    return pd.DataFrame(rows)


def summarize_importance(table, value="importance", method="permutation"):
    """Mean and s.e.m. over splits of a per-split importance table, ready for :func:`lrid_analysis.plots.importance_bars`.

    Parameters
    ----------
    table : pandas.DataFrame
        With columns ``split``, ``group`` and ``value`` (e.g. the output of
        :func:`permutation_importance`, or of :func:`gini_importance` with
        ``per_split=True`` and ``value="importance_mean"``).
    value : str
    method : str
        Name of the importance (``permutation``, ``gini``), written to the
        ``importance`` column: concatenated summaries of several methods
        draw one panel each.

    Returns
    -------
    pandas.DataFrame, shape (n_groups, 6)
        One row per group, in first-appearance order: ``statistic`` (the
        group), ``measure`` (None for a custom group), ``importance``
        (``method``), ``mean``, ``sem`` (NaN for one split), ``n_splits``:
        the default columns of :func:`lrid_analysis.plots.importance_bars`.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"split": [0, 0, 1, 1], "group": ["actabs_norm", "gradavgsq_id"] * 2,
    ...                       "importance": [0.2, 0.0, 0.4, 0.1]})
    >>> summarize_importance(table)[["statistic", "measure", "mean"]].round(2).values.tolist()
    [['actabs_norm', 'act', 0.3], ['gradavgsq_id', 'grad', 0.05]]
    """
    missing = [c for c in ("split", "group", value) if c not in table.columns]
    if missing:
        raise ValueError(f"importance table lacks column(s) {missing}; it has {list(table.columns)}")
    order = list(dict.fromkeys(table["group"]))
    grouped = table.groupby("group", sort=False)[value]
    return pd.DataFrame({
        "statistic": order,
        "measure": [_maybe_measure(g) for g in order],
        "importance": method,
        "mean": grouped.mean().reindex(order).to_numpy(),
        "sem": grouped.sem(ddof=1).reindex(order).to_numpy(),
        "n_splits": grouped.size().reindex(order).to_numpy(),
    })
