"""Hyperparameter selection by (successive-halving) grid search, then a refit."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.model_selection import (
    GridSearchCV,
    ParameterGrid,
    StratifiedGroupKFold,
    StratifiedKFold,
)
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _num_samples, check_is_fitted

from ._layout import _estimator_has, _group_codes


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
        Stratified, shuffled folds (seeded by ``random_state``); with
        ``groups`` in ``fit``, stratified *grouped* folds
        (:class:`~sklearn.model_selection.StratifiedGroupKFold`): every
        network's rows fall in one fold, so no validation row shares a
        network with the rows the candidate was fitted on.
    shuffle : bool
        Shuffle before cutting folds (seeded); False keeps the row order, as
        the paper's protocol did (``--selection paper``).
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
    cv_ : cross-validator or None
        The splitter the search used (None with a single candidate).
    grouped_ : bool
        Whether the folds were grouped.
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> rng = np.random.default_rng(0)
    >>> groups = np.repeat(np.arange(12), 4)                # 12 networks, 4 layers each
    >>> y = np.where(groups % 2, "adam", "sgdm")
    >>> X = rng.normal(size=(48, 3)) + (groups % 2)[:, None]
    >>> est = GridSelection(KNeighborsClassifier(), {"n_neighbors": [1, 5]}, search="grid")
    >>> est.fit(X, y, groups=groups).best_params_["n_neighbors"] in (1, 5)
    True
    """

    def __init__(self, estimator, param_grid, search="halving", cv=3, shuffle=True, factor=3, scoring="accuracy",
                 n_jobs=1, random_state=0):
        self.estimator = estimator
        self.param_grid = param_grid
        self.search = search
        self.cv = cv
        self.shuffle = shuffle
        self.factor = factor
        self.scoring = scoring
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X, y, groups=None, **fit_params):
        """Search the grid on (X, y) and refit the best candidate on all of it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or (n_samples, n_checkpoints, n_channels)
            3-D when the estimator takes it (its tags), e.g.
            :class:`~lrid_analysis.classifiers.Conv1DClassifier`.
        y : array-like of shape (n_samples,)
        groups : array-like of shape (n_samples,), optional
            Network id of every row: the folds are grouped by it. None:
            row folds, with an :class:`UngroupedSelectionWarning` when there
            is something to select.
        **fit_params
            Passed to the estimator's ``fit``.

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
            self.cv_, self.grouped_ = None, groups is not None
        else:
            codes = _group_codes(groups, _num_samples(X), "GridSelection")
            seed = self.random_state if self.shuffle else None
            if codes is None:
                cv = StratifiedKFold(n_splits=self.cv, shuffle=bool(self.shuffle), random_state=seed)
            else:
                if codes.max() + 1 < self.cv:
                    raise ValueError(f"GridSelection: {codes.max() + 1} groups cannot fill cv={self.cv} grouped folds")
                cv = StratifiedGroupKFold(n_splits=self.cv, shuffle=bool(self.shuffle), random_state=seed)
            self.cv_, self.grouped_ = cv, codes is not None
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
            search.fit(X, y, groups=groups, **fit_params)
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = get_tags(self.estimator).input_tags.three_d_array
        return tags
