"""Random forest whose hyperparameters are chosen by out-of-bag accuracy."""

from __future__ import annotations

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import ParameterGrid
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_is_fitted,
    check_random_state,
    column_or_1d,
)

from ._layout import UngroupedSelectionWarning, _group_codes  # noqa: F401  (docs)
from .grids import RANDOM_FOREST_GRID


def _project(scores, sizes, final_size):
    """OOB accuracy at ``final_size`` if the latest gain per doubling of trees continued."""
    if len(scores) < 2:
        return float(scores[-1])
    gain = max(scores[-1] - scores[-2], 0.0) / np.log2(sizes[-1] / sizes[-2])
    return float(scores[-1] + gain * np.log2(final_size / sizes[-1]))


def _decision_sizes(sizes, prune_from):
    """The grid's tree counts plus doublings between distant ones, from ``prune_from`` on.

    Between consecutive grid sizes ``a < b`` with ``a >= prune_from``, the
    sizes ``2a, 4a, ...`` up to ``b / 2`` are added: pruning decisions there
    use a more recent (smaller) gain than the one measured before ``a``.
    Only grid sizes are candidates for selection.

    Returns
    -------
    list of int
        Sorted sizes to grow through.
    """
    out = [sizes[0]]
    for a, b in zip(sizes[:-1], sizes[1:]):
        extra = a * 2
        while a >= prune_from and extra * 2 <= b:
            out.append(extra)
            extra *= 2
        out.append(b)
    return out


def _growth_cost(trees):
    """Deterministic proxy of the cost of growing more trees like these.

    Split search scans ``max_features`` columns for every sample of every
    node: the sum over trees of ``max_features_ * sum(n_node_samples)``.
    """
    return sum(int(t.max_features_) * int(t.tree_.n_node_samples.sum()) for t in trees)


class _OOBVotes:
    """Out-of-bag class probabilities of a growing forest, tree by tree.

    For every training row, the sum of the class probabilities of the trees
    that did not see it, updated with the trees added since the last call.
    The accuracy and the averaged probabilities follow scikit-learn's
    ``oob_score_`` and ``oob_decision_function_`` exactly (rows without
    out-of-bag trees count as predicting the first class).
    """

    def __init__(self, X, codes, n_classes):
        self.X = X
        self.codes = codes
        self.sums = np.zeros((len(codes), n_classes))
        self.counts = np.zeros(len(codes), dtype=np.int64)
        self.n_trees = 0

    def update(self, grower):
        for t in range(self.n_trees, grower.n_trees):
            rows = grower.oob_rows(t)
            if len(rows):
                self.sums[rows] += grower.trees[t].predict_proba(self.X[rows])
                self.counts[rows] += 1
        self.n_trees = grower.n_trees

    def decision_function(self):
        return self.sums / np.maximum(self.counts, 1)[:, None]

    def accuracy(self):
        return float(np.mean(np.argmax(self.decision_function(), axis=1) == self.codes))


class _WarmStartGrower:
    """One setting grown as a scikit-learn forest with ``warm_start`` (row bootstrap)."""

    def __init__(self, forest, X, y, sample_weight):
        self.forest, self.X, self.y, self.sample_weight = forest, X, y, sample_weight
        self.n_rows = len(y)

    @property
    def trees(self):
        return self.forest.estimators_ if hasattr(self.forest, "estimators_") else []

    @property
    def n_trees(self):
        return len(self.trees)

    def grow(self, size):
        self.forest.set_params(n_estimators=size).fit(self.X, self.y, sample_weight=self.sample_weight)

    def oob_rows(self, t):
        out_of_bag = np.ones(self.n_rows, dtype=bool)
        out_of_bag[self.forest.estimators_samples_[t]] = False
        return np.flatnonzero(out_of_bag)

    def final(self, k):
        forest = self.forest
        forest.estimators_ = forest.estimators_[:k]
        forest.set_params(n_estimators=k, warm_start=False, oob_score=True)
        return forest


class _GroupBootstrap:
    """Bootstraps over networks shared by all settings: tree ``t`` draws ``n_groups`` networks.

    ``counts[t, g]`` is how often network ``g`` was drawn for tree ``t``; a
    row's weight is its network's count, so the out-of-bag rows of a tree
    are whole networks. ``seeds[t]`` seeds tree ``t``'s feature draws. With
    ``strata`` (a class code per network) each tree draws, within every
    class, as many of its networks as it has, with replacement.
    """

    def __init__(self, codes, n_trees, random_state, strata=None):
        rng = np.random.RandomState(random_state)
        n_groups = int(codes.max()) + 1
        self.codes = codes
        self.seeds = rng.randint(np.iinfo(np.int32).max, size=n_trees)
        if strata is None:
            draws = rng.randint(0, n_groups, size=(n_trees, n_groups))
        else:
            members = [np.flatnonzero(strata == c) for c in np.unique(strata)]
            draws = np.hstack([m[rng.randint(0, len(m), size=(n_trees, len(m)))] for m in members])
        self.counts = np.stack([np.bincount(d, minlength=n_groups) for d in draws]).astype(np.int32)


class _GroupedGrower:
    """One setting grown tree by tree on network bootstraps, as scikit-learn grows a forest.

    Each tree is the forest's :class:`~sklearn.tree.DecisionTreeClassifier`
    (the forest's tree parameters) fitted on all rows with weights = the
    row's network count in the bootstrap (times ``sample_weight`` and the
    class weights), which is how scikit-learn applies a row bootstrap.
    """

    def __init__(self, forest, X, codes, n_classes, sample_weight, bootstrap, n_jobs):
        self.forest, self.X, self.codes, self.n_classes = forest, X, codes, n_classes
        self.bootstrap, self.n_jobs = bootstrap, n_jobs
        self.base_weight = np.ones(len(codes)) if sample_weight is None else np.asarray(sample_weight, float)
        class_weight = forest.class_weight
        if class_weight is not None and class_weight != "balanced_subsample":
            self.base_weight = self.base_weight * compute_sample_weight(class_weight, codes)
        self.trees = []
        self.tree_params = {p: getattr(forest, p) for p in forest.estimator_params if p != "random_state"}

    @property
    def n_trees(self):
        return len(self.trees)

    def _fit_tree(self, t):
        counts = self.bootstrap.counts[t][self.bootstrap.codes]
        weight = self.base_weight * counts
        if self.forest.class_weight == "balanced_subsample":
            inbag = np.repeat(np.arange(len(counts)), counts)
            weight = weight * compute_sample_weight("balanced", self.codes, indices=inbag)
        tree = DecisionTreeClassifier(**self.tree_params, random_state=int(self.bootstrap.seeds[t]))
        return tree.fit(self.X, self.codes, sample_weight=weight)

    def grow(self, size):
        new = range(self.n_trees, size)
        self.trees.extend(Parallel(n_jobs=self.n_jobs, prefer="threads")(delayed(self._fit_tree)(t) for t in new))

    def oob_rows(self, t):
        return np.flatnonzero(self.bootstrap.counts[t][self.bootstrap.codes] == 0)

    def final(self, k):
        forest = self.forest.set_params(n_estimators=k, warm_start=False, oob_score=True)
        forest._validate_estimator()
        forest.estimators_ = self.trees[:k]
        forest.n_outputs_ = 1
        forest.n_classes_ = self.n_classes
        forest.n_features_in_ = self.X.shape[1]
        return forest


class OOBForestSelection(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """A random forest whose hyperparameters are chosen by out-of-bag accuracy.

    One forest per setting of the non-tree parameters (e.g. ``max_features``)
    grows with ``warm_start`` through the sorted ``n_estimators`` values of
    the grid; after each size its out-of-bag (OOB) accuracy is read: every
    training row is predicted by the trees that did not see it (the same
    number as scikit-learn's ``oob_score_``; only the new trees are
    evaluated at each size). All settings share ``random_state``, hence the
    same bootstrap samples, so their comparison is paired.

    Successive halving: every setting first grows to the smallest size; then,
    cheapest first (see below), each setting grows size by size, and from
    ``prune_from`` trees on it stops growing when its projected OOB accuracy
    at the largest size is more than ``margin`` below the best OOB accuracy
    recorded so far (any setting, any size): it could not win any more. The
    projection continues the setting's latest gain per doubling of trees,
    linearly in log(trees): ``acc(k) + gain * log2(k_max / k)`` with
    ``gain = (acc(k) - acc(k_prev)) / log2(k / k_prev)`` (at least 0), so a
    setting that has levelled off is judged on its current accuracy and one
    that is still climbing is kept. That matters when many columns are each
    weakly informative: ``max_features="sqrt"`` then trails ``None`` at 100
    trees and overtakes it by 1,000 (a row's OOB vote uses only about 37 % of
    the trees, so small forests of weak trees look worse than they become).
    Between grid sizes far apart (from ``prune_from`` on, e.g. 100 and 500)
    the forests also stop at the doublings in between (200) to decide with a
    more recent gain; those sizes are never selected.
    Growing the cheap settings (``sqrt``, ``log2``) to the end first sets a
    high bar, so the expensive one (``None``: every column at every split)
    is dropped early when it cannot reach it. The cost of a setting is
    measured deterministically on its first trees: the sum over trees of
    ``max_features_`` times the samples of all nodes (the split-search work).

    The (setting, size) with the highest OOB accuracy wins; candidates within
    ``tol`` of it count as ties, broken by fewer trees, then grid order. The
    winning forest, cut to the chosen number of trees, is the final model:
    its first ``k`` trees are exactly the forest a fresh fit with
    ``n_estimators=k`` and the same ``random_state`` would grow.

    Grouped by network: rows are layers of networks, and layers of one
    network are strongly correlated, so a row's out-of-bag trees have mostly
    seen other layers of its network, and OOB accuracy rewards settings that
    memorize networks. With ``fit(X, y, groups=network_ids)`` each tree is
    grown on a bootstrap of *networks* (``n_groups`` networks drawn with
    replacement; every row weighted by its network's count, as scikit-learn
    weights rows by their bootstrap count), so a tree's out-of-bag rows are
    whole networks it never saw, and OOB accuracy estimates accuracy on new
    networks. Everything else (successive halving, ties, the final forest is
    the winner cut to size, no refit) is the same; trees are grown in
    threads (``n_jobs``) and the final forest is a
    :class:`~sklearn.ensemble.RandomForestClassifier` holding these trees
    (its ``estimators_samples_`` do not describe them: see
    ``bootstrap_counts_``). Without ``groups`` the row bootstrap above is
    used and an :class:`UngroupedSelectionWarning` says so.

    Parameters
    ----------
    estimator : RandomForestClassifier or None
        Template holding the fixed parameters (``class_weight``,
        ``criterion``, ...); it must support ``warm_start`` and ``oob_score``.
        None: ``RandomForestClassifier()``.
    param_grid : dict or None
        Must contain ``n_estimators``; the other keys are parameters of
        ``estimator``. None: :data:`RANDOM_FOREST_GRID`.
    margin : float
        OOB accuracy gap below the best at which a setting may be dropped.
    prune_from : int
        Smallest tree count after which a setting may be dropped (default
        100, i.e. before growing to 500 and 1000 trees).
    tol : float
        OOB accuracies within ``tol`` of the best count as ties.
    stratify_groups : bool
        Grouped fits: draw the networks with replacement within each class
        (a network's class is its rows' most frequent label), keeping the
        number of networks per class in every bootstrap. With few networks
        per class an unstratified draw makes a tree's out-of-bag networks
        over-represent the classes it drew few networks of, which biases
        OOB accuracy down. Default True: on three grouped splits of the
        public-schema synthetic table the stratified draw came within +0.44
        points of the nested grouped 5-fold search's test accuracy (the
        unstratified one -1.0 points) and made its choice in 1 of 3 splits
        (0 of 3; docs/benchmarks.md).
    n_jobs : int or None
        Trees grown in parallel; None keeps the template's setting.
    random_state : int, RandomState or None
        Seed of the bootstraps and feature draws; all settings share it.

    Attributes
    ----------
    best_estimator_ : RandomForestClassifier
        The final forest, ``best_params_["n_estimators"]`` trees.
    best_params_ : dict
    best_score_ : float
        OOB accuracy of the final forest.
    oob_scores_ : pandas.DataFrame
        One row per (setting, tree count) in grid order: the setting's
        parameters, ``n_estimators``, ``in_grid`` (False for the extra
        decision sizes, which are never selected), ``oob_score`` (NaN where
        the setting was dropped), ``projected`` (OOB accuracy projected to
        the largest size, see above) and ``dropped``.
    growth_order_ : list of int
        Settings (grid order indices) in the order they were grown.
    grouped_ : bool
        Whether ``fit`` got ``groups`` (network bootstrap).
    groups_ : ndarray of shape (n_groups,) or None
        The distinct groups, in the order of the columns of ``bootstrap_counts_``.
    bootstrap_counts_ : ndarray of shape (n_trees, n_groups) or None
        Grouped fits: how often each network was drawn for each tree of the
        final forest (0: the tree's out-of-bag networks).
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_importances_ : ndarray of shape (n_features,)

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> groups = np.repeat(np.arange(20), 5)                # 20 networks, 5 layers each
    >>> y = np.where(groups % 2, "adam", "sgdm")
    >>> X = rng.normal(size=(100, 4)) + (groups % 2)[:, None]
    >>> est = OOBForestSelection(param_grid={"max_features": [1, None], "n_estimators": [10, 20]})
    >>> est = est.fit(X, y, groups=groups)
    >>> sorted(est.best_params_), est.grouped_
    (['max_features', 'n_estimators'], True)
    """

    def __init__(self, estimator=None, param_grid=None, margin=0.01, prune_from=100, tol=0.0,
                 stratify_groups=True, n_jobs=None, random_state=0):
        self.stratify_groups = stratify_groups
        self.estimator = estimator
        self.param_grid = param_grid
        self.margin = margin
        self.prune_from = prune_from
        self.tol = tol
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _grid(self):
        grid = RANDOM_FOREST_GRID if self.param_grid is None else self.param_grid
        if not isinstance(grid, dict) or "n_estimators" not in grid:
            raise ValueError(
                f"OOBForestSelection: param_grid must be a dict with an 'n_estimators' list, got {grid!r}"
            )
        sizes = sorted({int(k) for k in grid["n_estimators"]})
        if not sizes or sizes[0] < 1:
            raise ValueError(f"OOBForestSelection: n_estimators values must be >= 1, got {grid['n_estimators']}")
        rest = {k: list(v) for k, v in grid.items() if k != "n_estimators"}
        return sizes, list(ParameterGrid(rest)) if rest else [{}]

    def fit(self, X, y, sample_weight=None, groups=None):
        """Grow the forests, select on OOB accuracy, keep the winner.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional
        groups : array-like of shape (n_samples,), optional
            Network id of every row: bootstrap over networks, so out-of-bag
            rows are whole networks (see above). None: row bootstrap, with
            an :class:`UngroupedSelectionWarning`.

        Returns
        -------
        self
        """
        sizes, settings = self._grid()
        template = RandomForestClassifier() if self.estimator is None else self.estimator
        params = template.get_params()
        for key in ("warm_start", "oob_score", "bootstrap"):
            if key not in params:
                raise ValueError(f"OOBForestSelection: estimator {type(template).__name__} has no {key!r} parameter")
        unknown = sorted({k for s in settings for k in s} - set(params))
        if unknown:
            raise ValueError(
                f"OOBForestSelection: param_grid key(s) {unknown} are not parameters of "
                f"{type(template).__name__}; valid: {sorted(params)}"
            )
        seed = self.random_state
        if not isinstance(seed, (int, np.integer)):
            seed = int(check_random_state(seed).randint(np.iinfo(np.int32).max))
        fixed = {"warm_start": True, "oob_score": False, "bootstrap": True, "random_state": int(seed)}
        if self.n_jobs is not None:
            fixed["n_jobs"] = self.n_jobs
        forests = [clone(template).set_params(**setting, **fixed) for setting in settings]
        steps = _decision_sizes(sizes, self.prune_from)  # grid sizes and extra decision points
        allow_nan = template.__sklearn_tags__().input_tags.allow_nan
        X_checked = check_array(X, dtype=np.float32, accept_sparse="csr",
                                ensure_all_finite="allow-nan" if allow_nan else True)
        if y is None:
            raise ValueError("OOBForestSelection requires y to be passed, but the target y is None")
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if len(y) != X_checked.shape[0]:
            raise ValueError(f"OOBForestSelection: X has {X_checked.shape[0]} rows but y has {len(y)}")
        classes, codes = np.unique(y, return_inverse=True)
        group_codes = _group_codes(groups, len(y), "OOBForestSelection")
        if group_codes is None:
            growers = [_WarmStartGrower(f, X, y, sample_weight) for f in forests]
            self.groups_, self.bootstrap_counts_ = None, None
        else:
            if sample_weight is not None:
                sample_weight = _check_sample_weight(sample_weight, X_checked)
            strata = None
            if self.stratify_groups:  # each network's most frequent class
                table = np.zeros((int(group_codes.max()) + 1, len(classes)), dtype=np.int64)
                np.add.at(table, (group_codes, codes), 1)
                strata = table.argmax(axis=1)
            bootstrap = _GroupBootstrap(group_codes, steps[-1], seed, strata)
            growers = [_GroupedGrower(f, X_checked, codes, len(classes), sample_weight, bootstrap, f.n_jobs)
                       for f in forests]
            self.groups_ = np.unique(np.asarray(groups, dtype=object).astype(str))
        votes = [_OOBVotes(X_checked, codes, len(classes)) for _ in settings]
        on_grid = np.isin(steps, sizes)
        scores = np.full((len(settings), len(steps)), np.nan)
        projected = np.full((len(settings), len(steps)), np.nan)
        decisions = {}

        def grow(i, j):
            growers[i].grow(steps[j])
            votes[i].update(growers[i])
            scores[i, j] = votes[i].accuracy()
            if on_grid[j]:
                decisions[i, j] = votes[i].decision_function()
            projected[i, j] = _project(scores[i, :j + 1], steps[:j + 1], steps[-1])

        for i in range(len(settings)):
            grow(i, 0)
        # cheapest settings first, so that the expensive ones face the best accuracy there is
        order = sorted(range(len(settings)), key=lambda i: _growth_cost(growers[i].trees))
        for i in order:
            for j in range(1, len(steps)):
                bar = np.nanmax(scores[:, on_grid]) - self.margin
                if steps[j - 1] >= self.prune_from and projected[i, j - 1] < bar:
                    break
                grow(i, j)
        self.growth_order_ = order
        grid_scores = np.where(on_grid, scores, np.nan)
        best = np.nanmax(grid_scores)
        tied = np.argwhere(grid_scores >= best - self.tol)  # rows: (setting, size) pairs
        i_best, j_best = min(tied, key=lambda ij: (ij[1], ij[0]))
        k = steps[j_best]
        forest = growers[i_best].final(k)
        if group_codes is not None:
            forest.classes_ = classes
            self.bootstrap_counts_ = bootstrap.counts[:k].copy()
        forest.oob_score_ = scores[i_best, j_best]
        forest.oob_decision_function_ = decisions[i_best, j_best]
        self.grouped_ = group_codes is not None
        self.best_estimator_ = forest
        self.best_params_ = {**settings[i_best], "n_estimators": k}
        self.best_score_ = float(scores[i_best, j_best])
        rows = []
        for i, setting in enumerate(settings):
            for j, size in enumerate(steps):
                rows.append({**setting, "n_estimators": size, "in_grid": bool(on_grid[j]),
                             "oob_score": scores[i, j], "projected": projected[i, j],
                             "dropped": bool(np.isnan(scores[i, j]))})
        table = pd.DataFrame(rows)
        for key in settings[0]:  # keep parameter values as given (None stays None, not NaN)
            table[key] = pd.Series([row[key] for row in rows], dtype=object)
        self.oob_scores_ = table
        self.classes_ = forest.classes_
        self.n_features_in_ = X_checked.shape[1]
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
            forest.feature_names_in_ = self.feature_names_in_
        return self

    def predict(self, X):
        """Predicted labels, shape (n_samples,)."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X)

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes)."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_proba(X)

    @property
    def feature_importances_(self):
        """Gini importances of the final forest, shape (n_features,)."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.feature_importances_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        template = RandomForestClassifier() if self.estimator is None else self.estimator
        tags.input_tags.allow_nan = template.__sklearn_tags__().input_tags.allow_nan
        tags.input_tags.sparse = template.__sklearn_tags__().input_tags.sparse
        return tags
