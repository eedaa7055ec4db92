"""Gradient-boosted trees (XGBoost) for any label type."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._layout import _one_class_error


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
