"""The flat feature layout and small helpers shared by the classifiers."""

from __future__ import annotations

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


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
