"""Estimators that keep the trajectory axis: :class:`Flatten` and :class:`WindowGeneralizer`.

Trajectory layout
    :func:`lrid_analysis.features.trajectories` gives ``X`` of shape
    ``(n_rows, n_checkpoints, n_channels)``: the observables' trajectories,
    then the ``n_categorical`` (3) layer-position one-hot channels, constant
    along the checkpoints. The number of checkpoints travels with ``X``
    (its second axis) instead of beside it.
Flat layout
    :class:`Flatten` turns it into the statistic-major 2-D layout of
    :func:`lrid_analysis.features.flatten` (observable ``j`` at checkpoint
    ``c`` in column ``j * n_checkpoints + c``, the one-hot once, last), the
    step an estimator that needs flat features puts first.
Windows
    :class:`WindowGeneralizer` fits its estimator on one consecutive third of
    the trajectory (``early``, ``middle``, ``late``; see
    :func:`lrid_analysis.features.window_checkpoints`) and predicts or scores
    on other thirds of the same rows (Fig. 4b), in the spirit of MNE's
    ``GeneralizingEstimator`` over time. When the thirds differ in length
    (a number of checkpoints not divisible by 3), each keeps its first
    ``min length`` checkpoints so that features align.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, TransformerMixin, clone
from sklearn.pipeline import make_pipeline
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted, validate_data

from .features import WINDOWS, window_checkpoints
from .runner import best_params, groups_fit_params

__all__ = ["Flatten", "WindowGeneralizer", "for_trajectories", "window_indices"]


def _as_trajectories(X, who):
    X = np.asarray(X)
    if X.ndim != 3:
        raise ValueError(f"{who} needs X of shape (n_rows, n_checkpoints, n_channels) "
                         f"(lrid_analysis.features.trajectories); got an array of shape {X.shape}")
    return X


class Flatten(TransformerMixin, BaseEstimator):
    """Flatten the trajectory axis into the flat feature layout.

    Parameters
    ----------
    n_categorical : int, default 3
        Trailing channels that are constant along the checkpoints (the
        layer-position one-hot): taken once, from the first checkpoint, and
        placed last. 0: every channel is a trajectory.

    Attributes
    ----------
    n_checkpoints_, n_channels_ : int
        Shape of the fitted ``X`` (None for an ``X`` that was already flat).
    n_features_out_ : int
        Columns of the output.
    n_features_in_ : int
        ``X.shape[1]`` of the fitted ``X`` (its checkpoints when 3-D), as
        scikit-learn records it.

    Notes
    -----
    ``transform(X)`` of ``X`` with shape ``(n_rows, n_checkpoints,
    n_channels)`` returns shape ``(n_rows, (n_channels - n_categorical) *
    n_checkpoints + n_categorical)``: channel ``j`` at checkpoint ``c`` in
    column ``j * n_checkpoints + c``, then the categorical channels.
    A 2-D ``X`` is taken as already flat and returned unchanged, so the step
    can lead a pipeline that also meets flat features.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.zeros((1, 3, 3))
    >>> X[0, :, 0] = [1, 2, 3]        # one observable over 3 checkpoints
    >>> X[0, :, 1:] = [0, 1]          # a two-column one-hot, constant in time
    >>> Flatten(n_categorical=2).fit_transform(X)
    array([[1., 2., 3., 0., 1.]])
    """

    def __init__(self, n_categorical=3):
        self.n_categorical = n_categorical

    def fit(self, X, y=None):
        """Record the shape of ``X`` (3-D, or 2-D when already flat).

        Returns
        -------
        self
        """
        X = validate_data(self, X, allow_nd=True, ensure_all_finite=False)
        if X.ndim == 2:
            self.n_checkpoints_ = self.n_channels_ = None
            self.n_features_out_ = X.shape[1]
            return self
        X = _as_trajectories(X, "Flatten")
        n_cat = int(self.n_categorical)
        if not 0 <= n_cat < X.shape[2]:
            raise ValueError(f"Flatten: n_categorical must be in [0, {X.shape[2]}) for X with {X.shape[2]} "
                             f"channels, got {self.n_categorical!r}")
        self.n_checkpoints_, self.n_channels_ = X.shape[1], X.shape[2]
        self.n_features_out_ = (X.shape[2] - n_cat) * X.shape[1] + n_cat
        return self

    def transform(self, X):
        """The flat features.

        Parameters
        ----------
        X : array-like, shape (n_rows, n_checkpoints, n_channels) or (n_rows, n_features)
            The fitted number of checkpoints and channels (a 2-D ``X`` passes
            through).

        Returns
        -------
        ndarray, shape (n_rows, n_features_out_)
            Same dtype as ``X``.

        Raises
        ------
        ValueError
            For another shape than the fitted one, or categorical channels
            that change along the checkpoints.
        """
        check_is_fitted(self, "n_features_out_")
        X = np.asarray(X) if getattr(X, "ndim", 2) == 3 else X
        fitted = "flat X" if self.n_checkpoints_ is None else f"(n_rows, {self.n_checkpoints_}, {self.n_channels_})"
        if getattr(X, "ndim", 2) == 3 and X.shape[1:] != (self.n_checkpoints_, self.n_channels_):
            raise ValueError(f"Flatten: X has shape {X.shape}, fitted on {fitted}")
        X = validate_data(self, X, reset=False, allow_nd=True, ensure_all_finite=False)
        if X.ndim == 2:
            if self.n_checkpoints_ is not None:
                raise ValueError(f"Flatten: X has shape {X.shape}, fitted on {fitted}")
            return X
        X = _as_trajectories(X, "Flatten")
        n_cont = X.shape[2] - int(self.n_categorical)
        categorical = X[:, :, n_cont:]
        changing = np.flatnonzero(~(categorical == categorical[:, :1]).all(axis=(0, 1)))
        if len(changing):
            raise ValueError(f"Flatten: categorical channel(s) {(changing + n_cont).tolist()} change along the "
                             f"checkpoints; use Flatten(n_categorical=k) (before the estimator) with k the number "
                             f"of trailing channels that are constant in time (now {self.n_categorical})")
        flat = np.ascontiguousarray(np.transpose(X[:, :, :n_cont], (0, 2, 1))).reshape(len(X), -1)
        return np.concatenate([flat, categorical[:, 0]], axis=1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = True
        return tags


def for_trajectories(estimator, n_categorical=3):
    """An estimator that takes the trajectory layout: ``estimator`` itself, or a Flatten pipeline.

    Parameters
    ----------
    estimator : estimator
        Returned as it is when its tags declare 3-D input
        (``input_tags.three_d_array``, e.g.
        :class:`~lrid_analysis.classifiers.Conv1DClassifier`); otherwise
        preceded by :class:`Flatten`.
    n_categorical : int, default 3
        Trailing constant channels (see :class:`Flatten`).

    Returns
    -------
    estimator
        Fits and predicts ``X`` of shape (n_rows, n_checkpoints, n_channels).

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> [name for name, _ in for_trajectories(LogisticRegression()).steps]
    ['flatten', 'logisticregression']
    """
    if get_tags(estimator).input_tags.three_d_array:
        return estimator
    return make_pipeline(Flatten(n_categorical=n_categorical), estimator)


def window_indices(n_checkpoints, windows=WINDOWS):
    """Checkpoints of each trajectory window, cut to a common length.

    Parameters
    ----------
    n_checkpoints : int
    windows : sequence of {"early", "middle", "late"}

    Returns
    -------
    dict of str to ndarray of int
        The first ``min length`` checkpoints of every window of
        :func:`lrid_analysis.features.window_checkpoints`, so that all
        windows give features of one layout.

    Examples
    --------
    >>> {w: c.tolist() for w, c in window_indices(8).items()}
    {'early': [0, 1], 'middle': [3, 4], 'late': [6, 7]}
    """
    cuts = {w: window_checkpoints(int(n_checkpoints), w) for w in windows}
    length = min(len(c) for c in cuts.values())
    return {w: c[:length] for w, c in cuts.items()}


class WindowGeneralizer(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Fit on one trajectory window, predict and score on others.

    Parameters
    ----------
    estimator : classifier
        Cloned in ``fit``. It gets the window's 3-D slice ``(n_rows,
        n_window, n_channels)`` when its tags declare 3-D input
        (``input_tags.three_d_array``, e.g. :class:`Flatten` or
        :class:`~lrid_analysis.classifiers.Conv1DClassifier`), else the
        window's flat features (:class:`Flatten`).
    train_window : {"early", "middle", "late"}, default "early"
    test_windows : str or sequence of str, optional
        Windows to predict and score. A single name: :meth:`predict` returns
        labels and :meth:`score` a float, as any classifier (usable in
        :func:`lrid_analysis.runner.run`). A sequence (default: all three):
        one column of predictions and one score per window.
    n_categorical : int, default 3
        Trailing constant channels of ``X`` (see :class:`Flatten`).

    Attributes
    ----------
    estimator_ : estimator
        The clone fitted on ``train_window``.
    windows_ : dict of str to ndarray of int
        Checkpoints of every window (:func:`window_indices`).
    test_windows_ : tuple of str
    classes_ : ndarray, shape (n_classes,)
    n_checkpoints_ : int
        Checkpoints of the fitted ``X``.
    flatten_ : Flatten or None
        The fitted step that flattens a window (None when the estimator takes
        3-D input).
    best_params_ : dict
        The estimator's, when it selects hyperparameters.
    output_names_ : list of str
        The test windows, when several are predicted (see
        :func:`lrid_analysis.runner.run`: one fit, one result row per window).

    Examples
    --------
    A signal present only late in training: fitted late, it transfers to the
    late window and not to the early one.

    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(["sgdm", "adam"], 20)
    >>> X = rng.normal(size=(40, 9, 2))
    >>> X[:, 6:, 0] += 4 * (y == "adam")[:, None]
    >>> gen = WindowGeneralizer(LogisticRegression(), "late", n_categorical=0).fit(X, y)
    >>> gen.score(X, y).round(2).tolist()   # early, middle, late
    [0.5, 0.5, 1.0]
    >>> WindowGeneralizer(LogisticRegression(), "late", "late", n_categorical=0).fit(X, y).score(X, y)
    1.0
    """

    def __init__(self, estimator, train_window="early", test_windows=None, n_categorical=3):
        self.estimator = estimator
        self.train_window = train_window
        self.test_windows = test_windows
        self.n_categorical = n_categorical

    def _tests(self):
        if self.test_windows is None:
            return WINDOWS
        return (self.test_windows,) if isinstance(self.test_windows, str) else tuple(self.test_windows)

    def _window(self, X, name):
        part = X[:, self.windows_[name]]
        return part if self.flatten_ is None else self.flatten_.transform(part)

    def fit(self, X, y, groups=None, **fit_params):
        """Fit a clone of the estimator on the train window.

        Parameters
        ----------
        X : array-like, shape (n_rows, n_checkpoints, n_channels)
            At least 3 checkpoints.
        y : array-like, shape (n_rows,)
        groups : array-like, shape (n_rows,), optional
            Passed on when the estimator's ``fit`` takes ``groups``.
        **fit_params
            Passed on to the estimator's ``fit``.

        Returns
        -------
        self
        """
        X = _as_trajectories(X, "WindowGeneralizer")
        names = (self.train_window, *self._tests())
        unknown = [w for w in names if w not in WINDOWS]
        if unknown:
            raise ValueError(f"WindowGeneralizer: unknown window(s) {unknown}; use {', '.join(WINDOWS)}")
        self.windows_ = window_indices(X.shape[1])
        self.n_checkpoints_ = X.shape[1]
        self.test_windows_ = self._tests()
        part = X[:, self.windows_[self.train_window]]
        self.flatten_ = None
        if not get_tags(self.estimator).input_tags.three_d_array:
            self.flatten_ = Flatten(n_categorical=self.n_categorical).fit(part)
            part = self.flatten_.transform(part)
        if groups is not None:
            fit_params.update(groups_fit_params(self.estimator, groups))
        self.estimator_ = clone(self.estimator).fit(part, y, **fit_params)
        self.classes_ = self.estimator_.classes_
        return self

    def _check(self, X):
        check_is_fitted(self, "estimator_")
        X = _as_trajectories(X, "WindowGeneralizer")
        if X.shape[1] != self.n_checkpoints_:
            raise ValueError(f"WindowGeneralizer: X has {X.shape[1]} checkpoints, fitted on {self.n_checkpoints_}")
        return X

    def predict(self, X):
        """Predicted labels on the test windows.

        Parameters
        ----------
        X : array-like, shape (n_rows, n_checkpoints, n_channels)

        Returns
        -------
        ndarray, shape (n_rows,) for a single test window named as a str, else (n_rows, n_test_windows)
            Column ``k`` predicted from ``test_windows_[k]``.
        """
        X = self._check(X)
        preds = [self.estimator_.predict(self._window(X, w)) for w in self.test_windows_]
        return preds[0] if isinstance(self.test_windows, str) else np.stack(preds, axis=1)

    def score(self, X, y, sample_weight=None):
        """Accuracy on every test window.

        Returns
        -------
        float for a single test window named as a str, else ndarray of shape (n_test_windows,)
        """
        pred = self.predict(X)
        y = np.asarray(y)
        weights = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        correct = (pred == y) if pred.ndim == 1 else (pred == y[:, None])
        scores = np.average(correct, axis=0, weights=weights)
        return float(scores) if pred.ndim == 1 else scores

    @property
    def output_names_(self):
        """Names of the prediction columns (the test windows) when several are predicted.

        :func:`lrid_analysis.runner.run` scores each column as one output (one
        fit per split for all test windows).
        """
        check_is_fitted(self, "estimator_")
        if isinstance(self.test_windows, str):
            raise AttributeError("a WindowGeneralizer with a single test window predicts one output")
        return list(self.test_windows_)

    @property
    def best_params_(self):
        """The fitted estimator's ``best_params_`` (AttributeError when it has none)."""
        check_is_fitted(self, "estimator_")
        params = best_params(self.estimator_)
        if params is None:
            raise AttributeError(f"{type(self.estimator_).__name__} selects no hyperparameters (no best_params_)")
        return params

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.two_d_array = False
        return tags
