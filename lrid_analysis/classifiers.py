"""Classifiers of learning rules, their hyperparameter grids and a registry.

Every estimator here takes the flat feature layout of
:func:`lrid_analysis.features.flatten`: an array ``X`` of shape
``(n_trajectories, n_observables * n_checkpoints + n_categorical)`` in which
observable ``j`` occupies columns ``j * n_checkpoints .. (j + 1) *
n_checkpoints - 1`` and the ``n_categorical`` (3) layer-position one-hot
columns come last. Labels may be strings; ``classes_`` holds them sorted.

Registry
    :func:`get_classifier` builds a registered classifier by name, ready for
    ``clone(est).fit(X_train, y_train)``. With ``select=True`` (default) and a
    grid, the estimator selects its hyperparameters inside ``fit`` from the
    training data only and exposes the choice as ``best_params_``.
    :func:`register_classifier` adds a classifier; packages can add their own
    through the entry-point group ``lrid.classifiers`` (an entry point loads a
    factory, or a ``(factory, param_grid)`` pair). :func:`resolve_classifier`
    also accepts ``"package.module:Name"`` and estimator objects.

Built-in classifiers (grids of Nayebi et al. 2020, Appendix B, unless stated)
    ``random_forest``
        ``max_features`` in {sqrt, log2, None} x ``n_estimators`` in
        {20, 50, 100, 500, 1000}; selected by out-of-bag accuracy
        (:class:`OOBForestSelection`).
    ``svm``
        Linear SVM (:class:`LinearSVMClassifier`) on standardized continuous
        features, with optional PCA of the continuous features; ``C`` in
        {1, 5e1, 5e2, 5e3, 5e4, 5e5, 5e6} x ``n_components`` in
        {None (no PCA), 10, 20, 50, 100, 200, 400, 600}.
    ``conv1d``
        One 1-D convolution over the checkpoints followed by a linear layer
        (:class:`Conv1DClassifier`, PyTorch); kernel size {1, 2, 6, 11, 21},
        stride {1, 2, 4}, {20, 40} filters, pooling {none, max, avg}, Adam
        learning rate {1e-3, 1e-4}, weight decay {0, 1e-4}.
    ``xgboost`` (our addition)
        Gradient-boosted trees (:class:`XGBoostClassifier`); ``max_depth`` in
        {3, 6} x ``n_estimators`` in {100, 300} x ``learning_rate`` in
        {0.05, 0.3}.
    ``logistic`` (our addition)
        Standardized multinomial logistic regression
        (:class:`LogisticClassifier`); ``C`` in {1e-3, 1e-2, 0.1, 1, 10, 100}.

Hyperparameter selection (all on the training data only, seeded)
    Random forests grow one forest per non-tree setting with ``warm_start``
    and read the out-of-bag accuracy at every tree count of the grid; cheap
    settings grow first, and after ``prune_from`` trees a setting stops
    growing when, projected to the largest tree count at its latest gain per
    doubling of trees, it stays more than ``margin`` below the best accuracy
    seen so far (successive halving; between distant grid sizes, e.g. 100
    and 500, it is also checked at the doublings in between). The best
    (setting, tree count) wins, fewer trees on ties, and the already grown
    forest, cut to that many trees, is the final model: no refit and no
    cross-validation.
    The other classifiers use :class:`GridSelection`: successive halving over
    the grid (:class:`~sklearn.model_selection.HalvingGridSearchCV`, factor 3,
    3-fold stratified CV, resources = training rows) and a refit of the
    winner on all training rows; ``search="grid"`` gives a plain 3-fold
    :class:`~sklearn.model_selection.GridSearchCV`.
"""

from __future__ import annotations

import importlib
import inspect
import warnings
from dataclasses import dataclass
from importlib import metadata

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    GridSearchCV,
    ParameterGrid,
    StratifiedKFold,
    train_test_split,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder, StandardScaler
from sklearn.svm import LinearSVC
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_array,
    check_is_fitted,
    check_random_state,
    column_or_1d,
    validate_data,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "import_object",
    "RANDOM_FOREST_GRID",
    "SVM_GRID",
    "CONV1D_GRID",
    "XGBOOST_GRID",
    "LOGISTIC_GRID",
    "register_classifier",
    "list_classifiers",
    "get_param_grid",
    "get_classifier",
    "resolve_classifier",
    "OOBForestSelection",
    "GridSelection",
    "LinearSVMClassifier",
    "LogisticClassifier",
    "XGBoostClassifier",
    "Conv1DClassifier",
]

#: Entry-point group through which other packages register classifiers.
ENTRY_POINT_GROUP = "lrid.classifiers"

#: Paper grid of the random forest.
RANDOM_FOREST_GRID = {"max_features": ["sqrt", "log2", None], "n_estimators": [20, 50, 100, 500, 1000]}
#: Paper grid of the linear SVM; ``n_components=None`` means no PCA.
SVM_GRID = {
    "C": [1.0, 5e1, 5e2, 5e3, 5e4, 5e5, 5e6],
    "n_components": [None, 10, 20, 50, 100, 200, 400, 600],
}
#: Paper grid of the Conv1D MLP (kernel sizes are capped at the number of checkpoints).
CONV1D_GRID = {
    "kernel_size": [1, 2, 6, 11, 21],
    "stride": [1, 2, 4],
    "n_filters": [20, 40],
    "pooling": ["none", "max", "avg"],
    "learning_rate": [1e-3, 1e-4],
    "weight_decay": [0.0, 1e-4],
}
#: Our grid for gradient-boosted trees (not in the paper).
XGBOOST_GRID = {"max_depth": [3, 6], "n_estimators": [100, 300], "learning_rate": [0.05, 0.3]}
#: Our grid for logistic regression (not in the paper).
LOGISTIC_GRID = {"C": [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0]}

_POOLINGS = ("none", "max", "avg")


# ---------------------------------------------------------------------------
# Flat layout
# ---------------------------------------------------------------------------

def _layout(n_features, n_checkpoints, n_categorical, who):
    """Number of observables of a flat layout; a clear error when it does not fit."""
    n_checkpoints, n_categorical = int(n_checkpoints), int(n_categorical)
    if n_checkpoints < 1:
        raise ValueError(f"{who}: n_checkpoints must be >= 1, got {n_checkpoints}")
    if n_categorical < 0:
        raise ValueError(f"{who}: n_categorical must be >= 0, got {n_categorical}")
    n_continuous = n_features - n_categorical
    if n_continuous < 1 or n_continuous % n_checkpoints:
        raise ValueError(
            f"{who}: X has {n_features} columns, which is not n_observables * n_checkpoints + "
            f"n_categorical with n_checkpoints={n_checkpoints} and n_categorical={n_categorical} "
            f"({n_continuous} continuous columns); pass the n_checkpoints and n_categorical of "
            "your feature layout"
        )
    return n_continuous // n_checkpoints


def _continuous_preprocessor(n_features, n_categorical, n_components, random_state):
    """Standardize (and optionally PCA) the continuous columns; pass the one-hot through."""
    steps = [("scale", StandardScaler())]
    if n_components is not None:
        steps.append(("pca", PCA(n_components=n_components, random_state=random_state)))
    continuous = Pipeline(steps)
    if n_categorical == 0:
        return continuous
    return ColumnTransformer(
        [
            ("continuous", continuous, np.arange(n_features - n_categorical)),
            ("categorical", "passthrough", np.arange(n_features - n_categorical, n_features)),
        ]
    )


def _one_class_error(classes, who):
    if len(classes) < 2:
        raise ValueError(f"{who} needs at least 2 classes in y; got one class: {classes[0]!r}")


def _estimator_has(attr):
    """For available_if: the fitted (or, before fit, the template) estimator has ``attr``."""

    def check(self):
        if hasattr(self, "best_estimator_"):
            return hasattr(self.best_estimator_, attr)
        return hasattr(self.estimator, attr)

    return check


# ---------------------------------------------------------------------------
# Random forest with out-of-bag selection
# ---------------------------------------------------------------------------

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


def _growth_cost(forest):
    """Deterministic proxy of the cost of growing more trees like these.

    Split search scans ``max_features`` columns for every sample of every
    node: the sum over trees of ``max_features_ * sum(n_node_samples)``.
    """
    return sum(int(t.max_features_) * int(t.tree_.n_node_samples.sum()) for t in forest.estimators_)


class _OOBVotes:
    """Out-of-bag class probabilities of a growing forest, tree by tree.

    For every training row, the sum of the class probabilities of the trees
    that did not see it (``estimators_samples_``), updated with the trees
    added since the last call. The accuracy and the
    averaged probabilities follow scikit-learn's ``oob_score_`` and
    ``oob_decision_function_`` exactly (rows without out-of-bag trees count
    as predicting the first class).
    """

    def __init__(self, X, y, classes):
        self.X = check_array(X, dtype=np.float32, accept_sparse="csr", ensure_all_finite=False)
        found, self.codes = np.unique(column_or_1d(y), return_inverse=True)
        if len(found) != len(classes):  # pragma: no cover - the forest saw the same y
            raise ValueError("class mismatch between y and the fitted forest")
        n, n_classes = len(self.codes), len(classes)
        self.sums = np.zeros((n, n_classes))
        self.counts = np.zeros(n, dtype=np.int64)
        self.n_trees = 0

    def update(self, forest):
        n = len(self.codes)
        samples = forest.estimators_samples_
        for t in range(self.n_trees, len(forest.estimators_)):
            out_of_bag = np.ones(n, dtype=bool)
            out_of_bag[samples[t]] = False
            rows = np.flatnonzero(out_of_bag)
            if len(rows):
                proba = forest.estimators_[t].predict_proba(self.X[rows])
                self.sums[rows] += proba
                self.counts[rows] += 1
        self.n_trees = len(forest.estimators_)

    def decision_function(self):
        return self.sums / np.maximum(self.counts, 1)[:, None]

    def accuracy(self):
        return float(np.mean(np.argmax(self.decision_function(), axis=1) == self.codes))


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
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_importances_ : ndarray of shape (n_features,)
    """

    def __init__(self, estimator=None, param_grid=None, margin=0.01, prune_from=100, tol=0.0,
                 n_jobs=None, random_state=0):
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

    def fit(self, X, y, sample_weight=None):
        """Grow the forests, select on OOB accuracy, keep the winner.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional

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
        votes = [None] * len(settings)
        steps = _decision_sizes(sizes, self.prune_from)  # grid sizes and extra decision points
        on_grid = np.isin(steps, sizes)
        scores = np.full((len(settings), len(steps)), np.nan)
        projected = np.full((len(settings), len(steps)), np.nan)
        decisions = {}

        def grow(i, j):
            forests[i].set_params(n_estimators=steps[j]).fit(X, y, sample_weight=sample_weight)
            if votes[i] is None:
                votes[i] = _OOBVotes(X, y, forests[i].classes_)
            votes[i].update(forests[i])
            scores[i, j] = votes[i].accuracy()
            if on_grid[j]:
                decisions[i, j] = votes[i].decision_function()
            projected[i, j] = _project(scores[i, :j + 1], steps[:j + 1], steps[-1])

        for i in range(len(settings)):
            grow(i, 0)
        # cheapest settings first, so that the expensive ones face the best accuracy there is
        order = sorted(range(len(settings)), key=lambda i: _growth_cost(forests[i]))
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
        forest = forests[i_best]
        k = steps[j_best]
        forest.estimators_ = forest.estimators_[:k]
        forest.set_params(n_estimators=k, warm_start=False, oob_score=True)
        forest.oob_score_ = scores[i_best, j_best]
        forest.oob_decision_function_ = decisions[i_best, j_best]
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
        self.n_features_in_ = forest.n_features_in_
        if hasattr(forest, "feature_names_in_"):
            self.feature_names_in_ = forest.feature_names_in_
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


# ---------------------------------------------------------------------------
# Generic grid selection
# ---------------------------------------------------------------------------

def _adapted_grid(estimator, param_grid, X):
    """Let an estimator drop grid values that are equivalent for data of X's shape."""
    grid = {k: list(v) for k, v in param_grid.items()}
    adapt = getattr(estimator, "_adapt_param_grid", None)
    return adapt(grid, np.shape(X)) if adapt is not None else grid


class GridSelection(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Select an estimator's hyperparameters on the training data, then refit.

    Parameters
    ----------
    estimator : classifier
    param_grid : dict of str to list
    search : {"halving", "grid"}
        ``"halving"``: :class:`~sklearn.model_selection.HalvingGridSearchCV`
        (successive halving over training rows, ``factor`` 3, so most
        candidates are judged on a fraction of the rows); ``"grid"``: plain
        :class:`~sklearn.model_selection.GridSearchCV`.
    cv : int
        Stratified, shuffled folds (seeded by ``random_state``).
    factor : int
        Successive-halving factor.
    scoring : str or callable
    n_jobs : int
        Candidates and folds fitted in parallel.
    random_state : int

    Attributes
    ----------
    best_estimator_ : estimator
        Refitted on all rows given to ``fit``.
    best_params_ : dict
    best_score_ : float
        Mean CV score of the winner (NaN with a single candidate).
    cv_results_ : dict or None
    search_method_ : {"halving", "grid", "none"}
        What ran: successive halving needs at least ``2 * cv * n_classes *
        factor`` rows, below that the full grid is searched; "none" with a
        single candidate.
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    """

    def __init__(self, estimator, param_grid, search="halving", cv=3, factor=3, scoring="accuracy",
                 n_jobs=1, random_state=0):
        self.estimator = estimator
        self.param_grid = param_grid
        self.search = search
        self.cv = cv
        self.factor = factor
        self.scoring = scoring
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X, y, **fit_params):
        """Search the grid on (X, y) and refit the best candidate on all of it.

        Returns
        -------
        self
        """
        if self.search not in ("halving", "grid"):
            raise ValueError(f"GridSelection: search must be 'halving' or 'grid', got {self.search!r}")
        if y is None:
            raise ValueError("GridSelection requires y to be passed, but the target y is None")
        check_classification_targets(y)
        grid = _adapted_grid(self.estimator, self.param_grid, X)
        candidates = list(ParameterGrid(grid))
        if len(candidates) == 1:
            self.best_params_ = candidates[0]
            self.best_estimator_ = clone(self.estimator).set_params(**candidates[0]).fit(X, y, **fit_params)
            self.best_score_ = float("nan")
            self.cv_results_ = None
            self.search_method_ = "none"
        else:
            cv = StratifiedKFold(n_splits=self.cv, shuffle=True, random_state=self.random_state)
            common = dict(scoring=self.scoring, cv=cv, n_jobs=self.n_jobs, refit=True, error_score="raise")
            # successive halving needs room for at least two rounds of its smallest
            # resource (2 rows per class and fold); on fewer rows search the full grid
            labels = np.asarray(y)
            n_classes = len(np.unique(labels))
            halving = self.search == "halving" and len(labels) >= 2 * self.cv * n_classes * self.factor
            if halving:
                from sklearn.experimental import enable_halving_search_cv  # noqa: F401
                from sklearn.model_selection import HalvingGridSearchCV

                search = HalvingGridSearchCV(clone(self.estimator), grid, factor=self.factor,
                                             random_state=self.random_state, **common)
            else:
                search = GridSearchCV(clone(self.estimator), grid, **common)
            search.fit(X, y, **fit_params)
            self.search_method_ = "halving" if halving else "grid"
            self.best_params_ = search.best_params_
            self.best_estimator_ = search.best_estimator_
            self.best_score_ = float(search.best_score_)
            self.cv_results_ = search.cv_results_
        self.classes_ = self.best_estimator_.classes_
        self.n_features_in_ = self.best_estimator_.n_features_in_
        return self

    def predict(self, X):
        """Predicted labels, shape (n_samples,)."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes)."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X):
        """Decision values of the best estimator."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.decision_function(X)

    @property
    def feature_importances_(self):
        """Feature importances of the best estimator, when it has them."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.feature_importances_


# ---------------------------------------------------------------------------
# Linear models on standardized features
# ---------------------------------------------------------------------------

class _StandardizedLinear(ClassifierMixin, BaseEstimator):
    """Shared fit logic: standardize the continuous columns (optional PCA), then a linear model."""

    def _linear_model(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _n_components(self):
        return None

    def fit(self, X, y):
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        name = type(self).__name__
        n_categorical = int(self.n_categorical)
        if not 0 <= n_categorical < X.shape[1]:
            raise ValueError(
                f"{name}: n_categorical={n_categorical} leaves no continuous column in X with "
                f"{X.shape[1]} columns"
            )
        self.classes_ = np.unique(y)
        _one_class_error(self.classes_, name)
        n_components = self._n_components()
        if n_components is not None:
            n_components = int(min(n_components, X.shape[0], X.shape[1] - n_categorical))
        self.n_components_ = n_components
        self.pipeline_ = Pipeline(
            [
                ("features", _continuous_preprocessor(X.shape[1], n_categorical, n_components,
                                                      self.random_state)),
                ("model", self._linear_model()),
            ]
        )
        with warnings.catch_warnings():
            # reported through converged_: with very large C on separable data the
            # solver stops at max_iter, and grid searches would print one warning per fit
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.pipeline_.fit(X, y)
        self.n_iter_ = self.pipeline_[-1].n_iter_
        self.converged_ = bool(np.all(np.asarray(self.n_iter_) < self.max_iter))
        return self

    def predict(self, X):
        """Predicted labels, shape (n_samples,)."""
        check_is_fitted(self, "pipeline_")
        X = validate_data(self, X, reset=False)
        return self.pipeline_.predict(X)

    def decision_function(self, X):
        """Decision values, shape (n_samples,) for 2 classes, else (n_samples, n_classes)."""
        check_is_fitted(self, "pipeline_")
        X = validate_data(self, X, reset=False)
        return self.pipeline_.decision_function(X)


class LinearSVMClassifier(_StandardizedLinear):
    """Linear SVM on standardized features, with optional PCA of the continuous ones.

    The continuous columns are standardized (and projected on their first
    ``n_components`` principal components when given); the last
    ``n_categorical`` one-hot columns pass through unchanged. The SVM is
    :class:`~sklearn.svm.LinearSVC` (squared hinge loss, one-vs-rest), solved
    in the primal (``dual=False``), which converges quickly for many rows and
    large ``C`` where a kernel SVC would not.

    Parameters
    ----------
    C : float
    n_components : int or None
        PCA components; capped at the number of rows and continuous columns
        seen in ``fit``. None: no PCA.
    n_categorical : int
    max_iter, tol : solver settings
    random_state : int

    Attributes
    ----------
    pipeline_ : sklearn.pipeline.Pipeline
    n_components_ : int or None
        Components actually used.
    converged_ : bool
        Whether the solver converged within ``max_iter`` (with very large
        ``C`` on separable data it may not; no warning is printed).
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    """

    def __init__(self, C=1.0, n_components=None, n_categorical=3, max_iter=1000, tol=1e-4, random_state=0):
        self.C = C
        self.n_components = n_components
        self.n_categorical = n_categorical
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _n_components(self):
        return self.n_components

    def _linear_model(self):
        return LinearSVC(C=self.C, dual=False, max_iter=self.max_iter, tol=self.tol, random_state=self.random_state)

    def _adapt_param_grid(self, grid, shape):
        """Cap PCA sizes at what the data allows and drop the duplicates this makes."""
        if "n_components" not in grid:
            return grid
        limit = min(shape[0], shape[1] - int(grid.get("n_categorical", [self.n_categorical])[0]))
        values = []
        for n in grid["n_components"]:
            n = None if n is None else int(min(n, limit))
            if n not in values:
                values.append(n)
        return {**grid, "n_components": values}


class LogisticClassifier(_StandardizedLinear):
    """Multinomial logistic regression on standardized continuous features.

    Parameters
    ----------
    C : float
        Inverse L2 penalty.
    n_categorical : int
        Trailing one-hot columns, passed through unscaled.
    max_iter : int
    random_state : int

    Attributes
    ----------
    pipeline_ : sklearn.pipeline.Pipeline
    converged_ : bool
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    """

    def __init__(self, C=1.0, n_categorical=3, max_iter=2000, random_state=0):
        self.C = C
        self.n_categorical = n_categorical
        self.max_iter = max_iter
        self.random_state = random_state

    def _linear_model(self):
        return LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.random_state)

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes)."""
        check_is_fitted(self, "pipeline_")
        X = validate_data(self, X, reset=False)
        return self.pipeline_.predict_proba(X)


# ---------------------------------------------------------------------------
# XGBoost
# ---------------------------------------------------------------------------

class XGBoostClassifier(ClassifierMixin, BaseEstimator):
    """Gradient-boosted trees (XGBoost, ``hist`` method) for any label type.

    Labels are encoded to 0..n_classes-1 internally, so string labels work.
    NaN is treated as missing.

    Parameters
    ----------
    n_estimators, max_depth, learning_rate, subsample, colsample_bytree :
        Boosting settings passed to :class:`xgboost.XGBClassifier`.
    n_jobs : int
    random_state : int

    Attributes
    ----------
    booster_ : xgboost.XGBClassifier
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_importances_ : ndarray of shape (n_features,)
    """

    def __init__(self, n_estimators=300, max_depth=6, learning_rate=0.1, subsample=1.0, colsample_bytree=1.0,
                 n_jobs=1, random_state=0):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X, y):
        """Fit the boosted trees.

        Returns
        -------
        self
        """
        from xgboost import XGBClassifier

        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan")
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        _one_class_error(self.classes_, "XGBoostClassifier")
        self.booster_ = XGBClassifier(
            n_estimators=self.n_estimators, max_depth=self.max_depth, learning_rate=self.learning_rate,
            subsample=self.subsample, colsample_bytree=self.colsample_bytree, n_jobs=self.n_jobs,
            random_state=self.random_state, tree_method="hist",
        ).fit(X, encoder.transform(y))
        return self

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes)."""
        check_is_fitted(self, "booster_")
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan")
        return self.booster_.predict_proba(X)

    def predict(self, X):
        """Predicted labels, shape (n_samples,)."""
        check_is_fitted(self, "booster_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    @property
    def feature_importances_(self):
        """Gain-based importances of the booster, shape (n_features,)."""
        check_is_fitted(self, "booster_")
        return self.booster_.feature_importances_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


# ---------------------------------------------------------------------------
# Conv1D MLP (PyTorch, imported lazily)
# ---------------------------------------------------------------------------

class _torch_threads:
    """Context manager: run torch with ``n`` CPU threads, then restore the setting."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        import torch

        self.before = torch.get_num_threads()
        if self.n is not None:
            torch.set_num_threads(int(self.n))

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.before)


def _conv_lengths(n_checkpoints, kernel_size, stride, pooling):
    """Effective kernel size, output length of the convolution and of the pooling."""
    kernel = min(int(kernel_size), n_checkpoints)
    conv_len = (n_checkpoints - kernel) // int(stride) + 1
    pooled = conv_len // 2 if pooling != "none" and conv_len >= 2 else conv_len
    return kernel, conv_len, pooled


class Conv1DClassifier(ClassifierMixin, BaseEstimator):
    """A 1-D convolution over the checkpoints, then a linear layer (PyTorch).

    The flat layout is reshaped to ``(n_samples, n_observables,
    n_checkpoints)`` (observables as channels). Each observable is
    standardized with its mean and standard deviation over training rows and
    checkpoints (so the shape of each trajectory is kept). One convolution
    (``n_filters`` filters, ``kernel_size`` capped at ``n_checkpoints``,
    ``stride``) with a ReLU, then optional max or average pooling (window 2,
    stride 2, skipped when a single time step is left), is flattened,
    concatenated with the one-hot columns and mapped to the classes by a
    linear layer. Training minimizes cross-entropy with Adam in mini-batches
    of ``batch_size``; ``validation_fraction`` of the training rows
    (stratified, seeded) are held out, and training stops after
    ``patience`` epochs without a lower validation loss (at most
    ``max_epochs``), keeping the weights of the best epoch. With too few
    rows for a stratified hold-out (fewer than 2 per class), all rows train
    for ``max_epochs``. Weight initialization and batch order are seeded by
    ``random_state`` without touching torch's global generator.

    Parameters
    ----------
    n_checkpoints, n_categorical : int
        Feature layout (see module docstring).
    n_filters, kernel_size, stride : int
    pooling : {"none", "max", "avg"}
    learning_rate, weight_decay : float
        Adam settings.
    batch_size, max_epochs, patience : int
    validation_fraction : float
        In [0, 1); 0 trains for ``max_epochs`` without early stopping.
    device : str
        Torch device for training (``"cpu"`` default); the fitted network is
        kept on the CPU.
    n_threads : int or None
        Torch CPU threads during ``fit`` and ``predict_proba`` (restored
        afterwards). The network is small, so 1 thread is fastest, and
        selection runs candidates in parallel processes (``n_jobs``) instead.
        None: leave torch's setting alone.
    random_state : int

    Attributes
    ----------
    network_ : torch.nn.ModuleDict
        ``features`` (conv, ReLU, pooling, flatten) and ``head`` (linear).
    channel_mean_, channel_scale_ : ndarray of shape (n_observables,)
    history_ : pandas.DataFrame
        Per epoch: ``epoch``, ``train_loss``, ``val_loss``, ``val_accuracy``.
    n_epochs_ : int
        Epochs run. ``best_epoch_`` : int, the epoch whose weights were kept.
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    """

    def __init__(self, n_checkpoints=21, n_categorical=3, n_filters=20, kernel_size=6, stride=1, pooling="max",
                 learning_rate=1e-3, weight_decay=0.0, batch_size=128, max_epochs=100, patience=10,
                 validation_fraction=0.1, device="cpu", n_threads=1, random_state=0):
        self.n_checkpoints = n_checkpoints
        self.n_categorical = n_categorical
        self.n_filters = n_filters
        self.kernel_size = kernel_size
        self.stride = stride
        self.pooling = pooling
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state

    def _adapt_param_grid(self, grid, shape):
        """Cap kernel sizes at the number of checkpoints and drop the duplicates."""
        if "kernel_size" not in grid:
            return grid
        limit = int(grid.get("n_checkpoints", [self.n_checkpoints])[0])
        sizes = []
        for k in grid["kernel_size"]:
            k = int(min(k, limit))
            if k not in sizes:
                sizes.append(k)
        return {**grid, "kernel_size": sizes}

    def _check_params(self):
        if self.pooling not in _POOLINGS:
            raise ValueError(f"Conv1DClassifier: pooling must be one of {_POOLINGS}, got {self.pooling!r}")
        for name in ("n_filters", "kernel_size", "stride", "batch_size", "max_epochs", "patience"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"Conv1DClassifier: {name} must be >= 1, got {getattr(self, name)!r}")
        if not 0.0 <= float(self.validation_fraction) < 1.0:
            raise ValueError(
                f"Conv1DClassifier: validation_fraction must be in [0, 1), got {self.validation_fraction!r}"
            )

    def _split(self, X):
        """(sequences (n, n_obs, n_ckpt) standardized, one-hot (n, n_cat)) as float32."""
        n_ckpt = int(self.n_checkpoints)
        n_obs = self.channel_mean_.shape[0]
        seq = X[:, : n_obs * n_ckpt].reshape(len(X), n_obs, n_ckpt)
        seq = (seq - self.channel_mean_[None, :, None]) / self.channel_scale_[None, :, None]
        return seq.astype(np.float32), X[:, n_obs * n_ckpt:].astype(np.float32)

    def _build_network(self, n_obs, n_classes):
        import torch
        from torch import nn

        n_ckpt, n_cat = int(self.n_checkpoints), int(self.n_categorical)
        kernel, conv_len, pooled = _conv_lengths(n_ckpt, self.kernel_size, self.stride, self.pooling)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.random_state))
            layers = [nn.Conv1d(n_obs, int(self.n_filters), kernel_size=kernel, stride=int(self.stride)), nn.ReLU()]
            if self.pooling != "none" and conv_len >= 2:
                layers.append(nn.MaxPool1d(2) if self.pooling == "max" else nn.AvgPool1d(2))
            layers.append(nn.Flatten())
            head = nn.Linear(int(self.n_filters) * pooled + n_cat, n_classes)
            return nn.ModuleDict({"features": nn.Sequential(*layers), "head": head})

    @staticmethod
    def _forward(network, seq, cat):
        import torch

        return network["head"](torch.cat([network["features"](seq), cat], dim=1))

    def fit(self, X, y):
        """Train the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_observables * n_checkpoints + n_categorical)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        import torch

        with _torch_threads(self.n_threads):
            return self._fit(torch, X, y)

    def _fit(self, torch, X, y):
        from torch.nn import functional as F

        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        n_obs = _layout(X.shape[1], self.n_checkpoints, self.n_categorical, "Conv1DClassifier")
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        _one_class_error(self.classes_, "Conv1DClassifier")
        codes = encoder.transform(y)
        n_ckpt = int(self.n_checkpoints)
        seq = X[:, : n_obs * n_ckpt].reshape(len(X), n_obs, n_ckpt)
        self.channel_mean_ = seq.mean(axis=(0, 2))
        scale = seq.std(axis=(0, 2))
        self.channel_scale_ = np.where(scale > 0, scale, 1.0)
        seq, cat = self._split(X)

        rows = np.arange(len(X))
        counts = np.bincount(codes)
        n_val = int(round(float(self.validation_fraction) * len(X)))
        early_stopping = n_val >= len(self.classes_) and counts.min() >= 2 and len(X) - n_val >= len(self.classes_)
        if early_stopping:
            train_rows, val_rows = train_test_split(rows, test_size=n_val, stratify=codes,
                                                    random_state=self.random_state)
        else:
            train_rows, val_rows = rows, rows[:0]

        device = torch.device(self.device)
        network = self._build_network(n_obs, len(self.classes_)).to(device)
        optimizer = torch.optim.Adam(network.parameters(), lr=float(self.learning_rate),
                                     weight_decay=float(self.weight_decay))
        tensors = [torch.from_numpy(a).to(device) for a in (seq, cat, codes.astype(np.int64))]
        generator = torch.Generator().manual_seed(int(self.random_state))
        train_idx = torch.from_numpy(train_rows)
        val_idx = torch.from_numpy(val_rows).to(device)
        best_loss, best_epoch, best_state, history = np.inf, 0, None, []
        for epoch in range(1, int(self.max_epochs) + 1):
            network.train()
            order = train_idx[torch.randperm(len(train_idx), generator=generator)].to(device)
            total = 0.0
            for start in range(0, len(order), int(self.batch_size)):
                batch = order[start:start + int(self.batch_size)]
                optimizer.zero_grad()
                loss = F.cross_entropy(self._forward(network, tensors[0][batch], tensors[1][batch]),
                                       tensors[2][batch])
                loss.backward()
                optimizer.step()
                total += loss.item() * len(batch)
            record = {"epoch": epoch, "train_loss": total / len(order), "val_loss": np.nan, "val_accuracy": np.nan}
            if early_stopping:
                network.eval()
                with torch.no_grad():
                    logits = self._forward(network, tensors[0][val_idx], tensors[1][val_idx])
                    record["val_loss"] = float(F.cross_entropy(logits, tensors[2][val_idx]))
                    record["val_accuracy"] = float((logits.argmax(1) == tensors[2][val_idx]).float().mean())
                if record["val_loss"] < best_loss:
                    best_loss, best_epoch = record["val_loss"], epoch
                    best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
            history.append(record)
            if early_stopping and epoch - best_epoch >= int(self.patience):
                break
        if best_state is not None:
            network.load_state_dict(best_state)
        else:
            best_epoch = len(history)
        self.network_ = network.to("cpu").eval()
        self.history_ = pd.DataFrame(history)
        self.n_epochs_ = len(history)
        self.best_epoch_ = best_epoch
        return self

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes)."""
        import torch

        check_is_fitted(self, "network_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        seq, cat = self._split(X)
        with _torch_threads(self.n_threads), torch.no_grad():
            logits = self._forward(self.network_, torch.from_numpy(seq), torch.from_numpy(cat))
            return torch.softmax(logits.double(), dim=1).numpy()

    def predict(self, X):
        """Predicted labels, shape (n_samples,)."""
        check_is_fitted(self, "network_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------

_CONTEXT = ("n_checkpoints", "n_categorical", "random_state", "n_jobs")


@dataclass
class _Entry:
    name: str
    factory: object
    param_grid: dict | None
    description: str
    search: object
    origin: str


_REGISTRY: dict = {}
_PLUGINS_LOADED = False


def register_classifier(name, factory, param_grid=None, description="", search=None, overwrite=False):
    """Add a classifier to the registry.

    Parameters
    ----------
    name : str
        Registry name (no ``":"``).
    factory : callable
        ``factory(**params) -> estimator``. Of ``n_checkpoints``,
        ``n_categorical``, ``random_state`` and ``n_jobs``, those the factory
        accepts are passed by :func:`get_classifier`; ``random_state`` and
        ``n_jobs`` are otherwise set on the estimator when it has them.
    param_grid : dict of str to list, optional
        Hyperparameter grid over the estimator's parameters.
    description : str
        One line for :func:`list_classifiers`; default: the factory's
        docstring's first line.
    search : callable, optional
        ``search(estimator, param_grid, random_state=..., n_jobs=...) ->
        estimator`` building the selecting estimator; default
        :class:`GridSelection`.
    overwrite : bool
        Replace an existing entry of that name instead of raising.
    """
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"classifier name must be a non-empty string without ':', got {name!r}")
    if not callable(factory):
        raise TypeError(f"classifier {name!r}: factory must be callable, got {type(factory).__name__}")
    if param_grid is not None:
        if not isinstance(param_grid, dict) or not all(isinstance(v, (list, tuple)) and len(v) for v in param_grid.values()):
            raise ValueError(f"classifier {name!r}: param_grid must map names to non-empty lists, got {param_grid!r}")
        param_grid = {k: list(v) for k, v in param_grid.items()}
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"classifier {name!r} is already registered ({_REGISTRY[name].origin}); pass overwrite=True")
    if not description:
        doc = inspect.getdoc(factory) or ""
        description = doc.strip().splitlines()[0] if doc.strip() else ""
    _REGISTRY[name] = _Entry(name, factory, param_grid, description, search, "registered")


def _load_plugins():
    """Register the classifiers of the ``lrid.classifiers`` entry points (once)."""
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _REGISTRY:
            warnings.warn(f"entry point {ep.value!r} ignored: classifier {ep.name!r} is already registered",
                          stacklevel=3)
            continue
        try:
            obj = ep.load()
            grid = None
            if isinstance(obj, (tuple, list)):
                if len(obj) != 2:
                    raise TypeError("expected a factory or a (factory, param_grid) pair")
                obj, grid = obj
            register_classifier(ep.name, obj, param_grid=grid)
            _REGISTRY[ep.name].origin = f"entry point {ep.value}"
        except Exception as err:  # a broken plugin must not break the registry
            warnings.warn(f"could not load classifier entry point {ep.name!r} ({ep.value}): {err}", stacklevel=3)


def list_classifiers():
    """Registered classifiers and their descriptions.

    Returns
    -------
    dict of str to str
        Name to one-line description, built-ins first, then entry points.
    """
    _load_plugins()
    return {name: entry.description for name, entry in _REGISTRY.items()}


def _entry(name):
    _load_plugins()
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown classifier {name!r}; registered: {', '.join(_REGISTRY)} "
            "(or pass 'package.module:Name' or an estimator object)"
        )
    return _REGISTRY[name]


def get_param_grid(name):
    """A copy of the registered grid of ``name`` (None when it has none)."""
    grid = _entry(name).param_grid
    return None if grid is None else {k: list(v) for k, v in grid.items()}


def import_object(path):
    """The object named by ``"package.module:Name"`` (``Name`` may be dotted).

    Raises
    ------
    ValueError
        Naming the path and what is wrong: malformed, module not importable,
        or attribute missing.
    """
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"classifier path {path!r} must look like 'package.module:Name'")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"classifier path {path!r}: cannot import module {module_name!r} ({err})") from err
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"classifier path {path!r}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def _build(factory, context, params, who):
    """Call a factory with the context arguments it accepts, then the shared settings it has."""
    try:
        named = inspect.signature(factory).parameters
        accepted = {k for k in context if k in named and named[k].kind is not inspect.Parameter.VAR_KEYWORD}
    except (TypeError, ValueError):  # builtins without a signature
        accepted = set()
    kwargs = {k: v for k, v in context.items() if k in accepted and k not in params}
    try:
        estimator = factory(**kwargs, **params)
    except TypeError as err:
        raise TypeError(f"classifier {who}: could not build it with parameters {sorted(params)} ({err})") from err
    if not (hasattr(estimator, "fit") and hasattr(estimator, "predict")):
        raise TypeError(f"classifier {who}: the factory returned {type(estimator).__name__}, which has no fit/predict")
    if hasattr(estimator, "get_params"):
        available = estimator.get_params(deep=False)
        shared = {k: context[k] for k in ("random_state", "n_jobs") if k in available and k not in accepted
                  and k not in params}
        if shared:
            estimator.set_params(**shared)
    return estimator


def _check_grid(estimator, grid, who):
    params = estimator.get_params()
    unknown = sorted(set(grid) - set(params))
    if unknown:
        raise ValueError(f"classifier {who}: grid key(s) {unknown} are not parameters; valid: {sorted(params)}")


def get_classifier(name, n_checkpoints=21, n_categorical=3, random_state=0, select=True, n_jobs=1,
                   param_grid=None, **params):
    """Build a classifier by registry name or ``"package.module:Name"``.

    Parameters
    ----------
    name : str
        A name from :func:`list_classifiers`, or an importable
        ``"package.module:Name"`` (a class or factory, without a grid).
    n_checkpoints, n_categorical : int
        Feature layout, passed to classifiers that need it.
    random_state : int
        Seed of the estimator and of its hyperparameter selection.
    select : bool
        With a grid: return an estimator that selects its hyperparameters
        inside ``fit`` (``best_params_``). False: fixed parameters (the
        factory's defaults and ``params``).
    n_jobs : int
        Parallel jobs for the selection (and the estimator when it has ``n_jobs``).
    param_grid : dict, optional
        Replaces the registered grid.
    **params
        Fixed estimator parameters; grid entries of the same name are dropped.

    Returns
    -------
    estimator
        Unfitted, sklearn-compatible.
    """
    if ":" in name:
        factory, grid, search, who = import_object(name), None, None, repr(name)
        if not callable(factory):
            return clone(factory).set_params(**params)
    else:
        entry = _entry(name)
        factory, grid, search, who = entry.factory, entry.param_grid, entry.search, repr(name)
    if param_grid is not None:
        grid = param_grid
    context = {"n_checkpoints": n_checkpoints, "n_categorical": n_categorical,
               "random_state": random_state, "n_jobs": n_jobs}
    estimator = _build(factory, context, params, who)
    if not select or not grid:
        return estimator
    grid = {k: list(v) for k, v in grid.items() if k not in params}
    _check_grid(estimator, grid, who)
    if search is not None:
        return search(estimator, grid, random_state=random_state, n_jobs=n_jobs)
    if len(ParameterGrid(grid)) <= 1:
        return estimator.set_params(**{k: v[0] for k, v in grid.items()})
    return GridSelection(estimator, grid, n_jobs=n_jobs, random_state=random_state)


def resolve_classifier(spec, n_checkpoints=21, n_categorical=3, random_state=0, select=True, n_jobs=1, **params):
    """Turn a classifier specification into an unfitted estimator.

    Parameters
    ----------
    spec : str, class, callable or estimator
        A registry name or ``"package.module:Name"`` (see
        :func:`get_classifier`), an estimator class or factory (called with
        the layout arguments it accepts), or an estimator object (cloned,
        ``params`` set on the clone).
    n_checkpoints, n_categorical, random_state, select, n_jobs, **params :
        See :func:`get_classifier`.

    Returns
    -------
    estimator
    """
    if isinstance(spec, str):
        return get_classifier(spec, n_checkpoints=n_checkpoints, n_categorical=n_categorical,
                              random_state=random_state, select=select, n_jobs=n_jobs, **params)
    if hasattr(spec, "fit") and not isinstance(spec, type):
        return clone(spec).set_params(**params)
    if callable(spec):
        context = {"n_checkpoints": n_checkpoints, "n_categorical": n_categorical,
                   "random_state": random_state, "n_jobs": n_jobs}
        return _build(spec, context, params, repr(getattr(spec, "__name__", spec)))
    raise TypeError(
        f"cannot make a classifier from {type(spec).__name__}; pass a registry name "
        f"({', '.join(list_classifiers())}), 'package.module:Name', a class or an estimator"
    )


# ---------------------------------------------------------------------------
# Built-ins
# ---------------------------------------------------------------------------

def _random_forest(n_estimators=500, max_features="sqrt", class_weight=None, random_state=0, n_jobs=1, **params):
    """Random forest (Gini); grid selected by out-of-bag accuracy."""
    return RandomForestClassifier(n_estimators=n_estimators, max_features=max_features,
                                  class_weight=class_weight, random_state=random_state, n_jobs=n_jobs, **params)


def _oob_forest_search(estimator, param_grid, random_state=0, n_jobs=1):
    if "n_estimators" not in param_grid:  # fixed by the caller: select the rest at that size
        param_grid = {**param_grid, "n_estimators": [estimator.get_params()["n_estimators"]]}
    return OOBForestSelection(estimator=estimator, param_grid=param_grid, n_jobs=n_jobs,
                              random_state=random_state)


def _builtin(name, factory, grid, description, search=None):
    _REGISTRY[name] = _Entry(name, factory, {k: list(v) for k, v in grid.items()}, description, search, "built-in")


_builtin("random_forest", _random_forest, RANDOM_FOREST_GRID,
         "Random forest; max_features x n_estimators chosen by out-of-bag accuracy", _oob_forest_search)
_builtin("svm", LinearSVMClassifier, SVM_GRID,
         "Linear SVM on standardized features, optional PCA; C x n_components by successive halving")
_builtin("conv1d", Conv1DClassifier, CONV1D_GRID,
         "Conv1D MLP over the checkpoints (PyTorch); architecture and Adam settings by successive halving")
_builtin("xgboost", XGBoostClassifier, XGBOOST_GRID,
         "Gradient-boosted trees (XGBoost); depth x trees x learning rate by successive halving")
_builtin("logistic", LogisticClassifier, LOGISTIC_GRID,
         "Standardized logistic regression; C by successive halving")
