"""An example classifier defined in a user's own file, ready for the lrid benchmark.

Benchmark it against the random-forest reference with::

    python -m lrid_benchmarks.classifiers --classifier examples/my_classifier.py:NearestCentroidClassifier --quick

or check only that it fits the contract::

    python -m lrid_benchmarks.classifiers --classifier examples/my_classifier.py:NearestCentroidClassifier --check-only

What makes it plug in: it inherits :class:`sklearn.base.BaseEstimator` (so
``get_params`` / ``set_params`` / ``clone`` work because ``__init__`` stores
its arguments unchanged), ``fit`` returns ``self``, fitted attributes end in
``_``, ``classes_`` keeps the labels as given (strings stay strings), and
``predict_proba`` rows sum to one. It has no randomness, so it is
deterministic.

The features are the flat layout of :func:`lrid_analysis.features.flatten`:
``n_observables * n_checkpoints`` trajectory columns, then the
``n_categorical`` (3) layer-position one-hot columns. This classifier
standardizes the trajectory columns, keeps the one-hot as it is, and assigns
each row to the class with the nearest mean (Euclidean distance).
"""

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data


class NearestCentroidClassifier(ClassifierMixin, BaseEstimator):
    """Nearest class mean on standardized trajectory features.

    Parameters
    ----------
    n_categorical : int
        Trailing one-hot columns (layer position), left unscaled. The
        benchmark passes the layout's value (3) because ``__init__`` accepts it.
    temperature : float
        Scale of the softmax over negative squared distances in
        ``predict_proba`` (larger: softer probabilities).

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
        Sorted training labels.
    centroids_ : ndarray, shape (n_classes, n_features)
        Class means in the standardized space.
    mean_, scale_ : ndarray, shape (n_features,)
        Standardization of every column (0 and 1 for the one-hot columns).
    n_features_in_ : int
    """

    def __init__(self, n_categorical=3, temperature=1.0):
        self.n_categorical = n_categorical
        self.temperature = temperature

    def fit(self, X, y):
        """Learn the standardization and the class means.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : array-like, shape (n_samples,)
            Labels of any type (strings in the benchmark).

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        n_continuous = max(X.shape[1] - int(self.n_categorical), 0)
        self.mean_ = np.zeros(X.shape[1])
        self.scale_ = np.ones(X.shape[1])
        if n_continuous:
            self.mean_[:n_continuous] = X[:, :n_continuous].mean(axis=0)
            std = X[:, :n_continuous].std(axis=0)
            self.scale_[:n_continuous] = np.where(std > 0, std, 1.0)
        Z = (X - self.mean_) / self.scale_
        self.centroids_ = np.stack([Z[codes == k].mean(axis=0) for k in range(len(self.classes_))])
        return self

    def _squared_distances(self, X):
        check_is_fitted(self, "centroids_")
        X = validate_data(self, X, reset=False)
        Z = (X - self.mean_) / self.scale_
        return ((Z[:, None, :] - self.centroids_[None, :, :]) ** 2).sum(axis=2)

    def predict_proba(self, X):
        """Softmax of ``-distance**2 / (2 * temperature * n_features)``, shape (n_samples, n_classes)."""
        logits = -self._squared_distances(X) / (2.0 * float(self.temperature) * self.n_features_in_)
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Label of the nearest class mean, shape (n_samples,)."""
        nearest = np.argmin(self._squared_distances(X), axis=1)  # checks that fit ran first
        return self.classes_[nearest]


def make_classifier(n_categorical=3):
    """Factory for the registry or an entry point: ``mine = "my_classifier:make_classifier"``."""
    return NearestCentroidClassifier(n_categorical=n_categorical)
