"""Linear models on the flat layout: linear SVM (optional PCA) and logistic regression."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._layout import _categorical_columns, _continuous_preprocessor, _one_class_error


class _StandardizedLinear(ClassifierMixin, BaseEstimator):
    """Shared fit logic: standardize the continuous columns (optional PCA), then a linear model."""

    def _linear_model(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _n_components(self):
        return None

    def _scale(self):
        return True

    def fit(self, X, y):
        """Fit the preprocessing and the linear model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Computed in float64.
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        name = type(self).__name__
        n_categorical = _categorical_columns(X, self.n_categorical, name)
        self.n_categorical_ = n_categorical
        self.classes_ = np.unique(y)
        _one_class_error(self.classes_, name)
        n_components = self._n_components()
        if n_components is not None:
            n_components = int(min(n_components, X.shape[0], X.shape[1] - n_categorical))
        self.n_components_ = n_components
        self.pipeline_ = Pipeline(
            [
                ("features", _continuous_preprocessor(X.shape[1], n_categorical, n_components,
                                                      self.random_state, scale=self._scale())),
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
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.pipeline_.predict(X)

    def decision_function(self, X):
        """Decision values, shape (n_samples,) for 2 classes, else (n_samples, n_classes)."""
        check_is_fitted(self, "pipeline_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.pipeline_.decision_function(X)


class LinearSVMClassifier(_StandardizedLinear):
    """Linear SVM on (standardized) features, with optional PCA of the continuous ones.

    The continuous columns are standardized (``scale=True``) and projected
    on their first ``n_components`` principal components when given; the
    last ``n_categorical`` one-hot columns pass through unchanged (when they
    are 0/1-valued, see ``n_categorical``). The SVM is
    :class:`~sklearn.svm.LinearSVC` (squared hinge loss, one-vs-rest). lrid's
    default solves it in the primal (``dual=False``), which converges
    quickly for many rows and large ``C``; the paper's protocol
    (``--selection paper``) used the dual solver on unscaled features
    (``scale=False, dual=True``). Everything is computed in float64.

    Parameters
    ----------
    C : float
    n_components : int or None
        PCA components; capped at the number of rows and continuous columns
        seen in ``fit``. None: no PCA.
    n_categorical : int
        Trailing one-hot columns kept out of scaling and PCA. They are only
        treated so when X has more columns than that and they hold only 0
        and 1; otherwise all columns are continuous (``n_categorical_``).
    scale : bool
        Standardize the continuous columns (before PCA).
    dual : bool
        LinearSVC's dual (True) or primal (False) solver.
    max_iter, tol : solver settings
    random_state : int

    Attributes
    ----------
    pipeline_ : sklearn.pipeline.Pipeline
    n_components_ : int or None
        Components actually used.
    n_categorical_ : int
        One-hot columns actually passed through.
    converged_ : bool
        Whether the solver converged within ``max_iter`` (with very large
        ``C`` on separable data it may not; no warning is printed).
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.hstack([rng.normal(size=(40, 6)), np.eye(3)[rng.integers(0, 3, 40)]])
    >>> X[:, 0] *= 5  # the informative column is the first principal component
    >>> y = np.where(X[:, 0] > 0, "adam", "sgdm")
    >>> est = LinearSVMClassifier(n_components=4, scale=False, dual=True).fit(X, y)
    >>> est.n_components_, est.n_categorical_, est.score(X, y) > 0.9
    (4, 3, True)
    """

    def __init__(self, C=1.0, n_components=None, n_categorical=3, scale=True, dual=False, max_iter=1000, tol=1e-4,
                 random_state=0):
        self.C = C
        self.n_components = n_components
        self.n_categorical = n_categorical
        self.scale = scale
        self.dual = dual
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _scale(self):
        return bool(self.scale)

    def _n_components(self):
        return self.n_components

    def _linear_model(self):
        return LinearSVC(C=self.C, dual=bool(self.dual), max_iter=self.max_iter, tol=self.tol, random_state=self.random_state)

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
        Trailing one-hot columns, passed through unscaled (when they hold
        only 0 and 1 and X has more columns; see :class:`LinearSVMClassifier`).
    max_iter : int
    random_state : int

    Attributes
    ----------
    pipeline_ : sklearn.pipeline.Pipeline
    n_categorical_ : int
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
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.pipeline_.predict_proba(X)
