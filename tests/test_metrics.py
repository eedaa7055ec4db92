"""Tests of lrid_analysis.metrics against hand-built confusion matrices, scikit-learn and scipy."""

import numpy as np
import pytest
from scipy.stats import norm
from sklearn import metrics as skm

from lrid_analysis import metrics as M

RULES = ["adam", "feedback", "information", "sgdm"]


def random_predictions(seed=0, n=200):
    rng = np.random.default_rng(seed)
    y_true = rng.choice(RULES, n)
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.choice(RULES, n))
    return y_true, y_pred


def test_confusion_matrix_matches_sklearn_and_skips_unknown_labels():
    y_true, y_pred = random_predictions()
    cm = M.confusion_matrix(y_true, y_pred, RULES)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y_true, y_pred, labels=RULES))
    # a label outside `labels` is not counted, rows stay in the given order
    cm = M.confusion_matrix(["adam", "x", "sgdm"], ["adam", "adam", "x"], labels=["sgdm", "adam"])
    np.testing.assert_array_equal(cm, [[0, 0], [0, 1]])


def test_mean_recall_is_sklearns_balanced_accuracy_and_alias():
    y_true, y_pred = random_predictions(1)
    cm = M.confusion_matrix(y_true, y_pred, RULES)
    assert M.mean_recall(cm) == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    assert M.balanced_accuracy is M.mean_recall
    # absent classes are skipped; nothing counted -> NaN
    assert M.mean_recall([[2, 0, 0], [1, 1, 0], [0, 0, 0]]) == pytest.approx((1 + 0.5) / 2)
    assert np.isnan(M.mean_recall(np.zeros((2, 2))))


def test_per_class_balanced_accuracy_hand_built():
    cm = np.array([[5, 3, 2],
                   [1, 7, 2],
                   [0, 4, 6]])
    # class 0: sensitivity 5/10; negatives rows 1, 2 = 20, predicted 0 among them: 1 -> specificity 19/20
    # class 1: 7/10; negatives 20, false alarms 3 + 4 = 7 -> 13/20
    # class 2: 6/10; negatives 20, false alarms 2 + 2 = 4 -> 16/20
    expected = [(5 / 10 + 19 / 20) / 2, (7 / 10 + 13 / 20) / 2, (6 / 10 + 16 / 20) / 2]
    np.testing.assert_allclose(M.per_class_balanced_accuracy(cm), expected)
    # one-vs-rest against scikit-learn's binary balanced accuracy
    y_true, y_pred = random_predictions(2)
    got = M.per_class_balanced_accuracy(M.confusion_matrix(y_true, y_pred, RULES))
    for k, rule in enumerate(RULES):
        assert got[k] == pytest.approx(skm.balanced_accuracy_score(y_true == rule, y_pred == rule))
    # it is not the mean recall: the two names cannot stand for each other
    assert np.mean(expected) != pytest.approx(M.mean_recall(cm))


def test_dprime_against_scipy_and_clipping():
    cm = np.array([[8, 1, 1], [2, 6, 2], [0, 0, 10]])
    hit = np.diag(cm) / cm.sum(1)
    fa = (cm.sum(0) - np.diag(cm)) / (cm.sum() - cm.sum(1))
    expected = np.clip(norm.ppf(hit), -5, 5) - np.clip(norm.ppf(fa), -5, 5)
    np.testing.assert_allclose(M.dprime(cm), expected)
    assert M.dprime(cm)[2] == pytest.approx(5 - norm.ppf(3 / 20))  # perfect hit rate clipped at 5
    np.testing.assert_allclose(M.dprime([[4, 0], [0, 4]]), [10.0, 10.0])
    assert np.isnan(M.dprime([[3, 0], [0, 0]])).all()  # class 1 absent: no positives / no negatives


def test_two_mean_dprimes_differ_as_defined():
    cms = np.array([[[9, 1], [3, 7]], [[6, 4], [1, 9]], [[10, 0], [0, 10]]])
    per_split = np.array([M.dprime(cm) for cm in cms])
    np.testing.assert_allclose(M.mean_split_dprime(cms), per_split.mean(0))
    # the split-mean matrix: [[25/3, 5/3], [4/3, 26/3]]
    hit = np.array([25 / 30, 26 / 30])
    fa = np.array([4 / 30, 5 / 30])
    np.testing.assert_allclose(M.dprime_of_mean_confusion(cms), norm.ppf(hit) - norm.ppf(fa))
    assert not np.allclose(M.mean_split_dprime(cms), M.dprime_of_mean_confusion(cms))
    # a split where a class is absent is skipped by lrid's mean
    with_absent = np.array([[[5, 5], [0, 0]], [[8, 2], [2, 8]]])
    np.testing.assert_allclose(M.mean_split_dprime(with_absent), M.dprime(with_absent[1]))
    with pytest.raises(ValueError, match="n_splits, n_labels, n_labels"):
        M.dprime_of_mean_confusion(np.eye(2))


def test_original_label_order():
    assert M.ORIGINAL_LABEL_ORDER == ("adam", "sgdm", "information", "feedback")
    assert M.label_order(RULES, "original") == ["adam", "sgdm", "information", "feedback"]
    assert M.label_order(["sgdm", "feedback", "zeta", "adam"], "original") == ["adam", "sgdm", "feedback", "zeta"]
    assert M.label_order(["sgdm", "adam", "adam"]) == ["adam", "sgdm"]
    with pytest.raises(ValueError, match="label order"):
        M.label_order(RULES, "paper")
    # a matrix in the original order is the sorted one permuted
    y_true, y_pred = random_predictions(3)
    order = M.label_order(RULES, "original")
    perm = [RULES.index(r) for r in order]
    np.testing.assert_array_equal(M.confusion_matrix(y_true, y_pred, order),
                                  M.confusion_matrix(y_true, y_pred, RULES)[np.ix_(perm, perm)])
