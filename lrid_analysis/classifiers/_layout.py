"""The flat feature layout and small helpers shared by the classifiers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.validation import column_or_1d


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


def _categorical_columns(X, n_categorical, who):
    """How many trailing columns of X are the one-hot block: ``n_categorical`` or 0.

    The last ``n_categorical`` columns count as one-hot (kept out of scaling
    and PCA) only when X has more columns than that and they hold only 0 and
    1; otherwise every column is continuous (e.g. a table without the layer
    one-hot).
    """
    n_categorical = int(n_categorical)
    if n_categorical < 0:
        raise ValueError(f"{who}: n_categorical must be >= 0, got {n_categorical}")
    if n_categorical == 0 or X.shape[1] <= n_categorical:
        return 0
    block = X[:, X.shape[1] - n_categorical:]
    return n_categorical if np.isin(block, (0, 1)).all() else 0


def _continuous_preprocessor(n_features, n_categorical, n_components, random_state, scale=True):
    """Standardize (optional) and PCA (optional) the continuous columns; pass the one-hot through."""
    steps = [("scale", StandardScaler())] if scale else []
    if n_components is not None:
        steps.append(("pca", PCA(n_components=n_components, random_state=random_state)))
    if n_categorical == 0:
        return Pipeline(steps) if steps else FunctionTransformer()
    continuous = Pipeline(steps) if steps else "passthrough"
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


class UngroupedSelectionWarning(UserWarning):
    """Hyperparameter selection ran without ``groups``: validation rows may share a network with fitting rows."""


def _group_codes(groups, n_samples, who):
    """Integer codes 0..n_groups-1 of ``groups`` (one per row), or None when no groups are given.

    Without groups a :class:`UngroupedSelectionWarning` is issued: rows of one
    network (its layers) are strongly correlated, so validating on rows whose
    network also fitted the model rewards settings that memorize networks.
    """
    if groups is None:
        warnings.warn(
            f"{who}: fit() got no groups, so hyperparameters are selected on rows whose network may "
            "also be in the fitting part (leaky for layers of one network); pass groups=<network id "
            "per row> to select across networks",
            UngroupedSelectionWarning, stacklevel=3,
        )
        return None
    groups = column_or_1d(groups, warn=True)
    if len(groups) != n_samples:
        raise ValueError(f"{who}: groups has {len(groups)} entries but X has {n_samples} rows")
    if pd.isna(pd.Series(groups, dtype=object)).any():
        raise ValueError(f"{who}: groups contains missing values; give every row its network id")
    _, codes = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    if codes.max() < 1:
        raise ValueError(f"{who}: groups has a single value; grouped selection needs at least 2 networks")
    return codes.astype(np.intp)
