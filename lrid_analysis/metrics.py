"""Scores of a learning-rule classifier: confusion matrices, accuracies, d'.

Two accuracies carry the name "balanced accuracy" in the literature and in
the two code bases, so each has a name here that cannot be confused:

:func:`mean_recall`
    The mean over the classes present of the per-class recall (scikit-learn's
    ``balanced_accuracy_score``); lrid's "balanced accuracy", a number. On
    category-balanced test sets it equals plain accuracy.
    :func:`balanced_accuracy` is an alias kept for existing code.
:func:`per_class_balanced_accuracy`
    The original project's ``balanced_accuracy``: for each class,
    ``(sensitivity + specificity) / 2`` one-vs-rest, a vector.

d' is one-vs-rest from a confusion matrix (:func:`dprime`, the original's
``dprime_confmat``). Over several splits the two projects average
differently: lrid reports the mean of the per-split d'
(:func:`mean_split_dprime`), the original the d' of the split-mean confusion
matrix (:func:`dprime_of_mean_confusion`). Both are given; they differ
because d' is not linear in the counts.

Confusion matrices have actual classes in rows and predicted classes in
columns, in the order of ``labels``. :data:`ORIGINAL_LABEL_ORDER` is the
original's class coding (order of first appearance in its data), so matrices
and d' vectors can be laid out as in the paper; lrid's default order is
sorted (``classes_`` of scikit-learn estimators).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

__all__ = [
    "DPRIME_CLIP",
    "ORIGINAL_LABEL_ORDER",
    "label_order",
    "confusion_matrix",
    "mean_recall",
    "balanced_accuracy",
    "per_class_balanced_accuracy",
    "dprime",
    "mean_split_dprime",
    "dprime_of_mean_confusion",
]

#: Each normal quantile of d' is clipped to ``[-DPRIME_CLIP, DPRIME_CLIP]``.
DPRIME_CLIP = 5.0

#: The original project's class coding: learning rules by first appearance in its data.
ORIGINAL_LABEL_ORDER = ("adam", "sgdm", "information", "feedback")


def label_order(labels, order="sorted"):
    """The labels in lrid's (sorted) or the original's order.

    Parameters
    ----------
    labels : array-like
        Labels that occur (repeats allowed).
    order : {"sorted", "original"}
        ``"original"``: :data:`ORIGINAL_LABEL_ORDER` first (those present),
        then any other labels sorted.

    Returns
    -------
    list

    Examples
    --------
    >>> label_order(["sgdm", "adam", "feedback", "information"], order="original")
    ['adam', 'sgdm', 'information', 'feedback']
    >>> label_order(["sgdm", "adam"])
    ['adam', 'sgdm']
    """
    present = sorted(set(np.asarray(labels, dtype=object).tolist()))
    if order == "sorted":
        return present
    if order != "original":
        raise ValueError(f"label order must be 'sorted' or 'original', got {order!r}")
    first = [label for label in ORIGINAL_LABEL_ORDER if label in present]
    return first + [label for label in present if label not in first]


def confusion_matrix(y_true, y_pred, labels):
    """Counts of (actual, predicted) pairs.

    Parameters
    ----------
    y_true, y_pred : array-like, shape (n_rows,)
    labels : sequence, length n_labels

    Returns
    -------
    ndarray of int, shape (n_labels, n_labels)
        Rows actual, columns predicted; rows or predictions outside
        ``labels`` are not counted.

    Examples
    --------
    >>> confusion_matrix(["a", "a", "b"], ["a", "b", "b"], labels=["a", "b"])
    array([[1, 1],
           [0, 1]])
    """
    labels = list(labels)
    index = {label: i for i, label in enumerate(labels)}
    true = np.array([index.get(v, -1) for v in np.asarray(y_true, dtype=object)], dtype=np.intp)
    pred = np.array([index.get(v, -1) for v in np.asarray(y_pred, dtype=object)], dtype=np.intp)
    keep = (true >= 0) & (pred >= 0)
    cm = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(cm, (true[keep], pred[keep]), 1)
    return cm


def _one_vs_rest(cm):
    """(true positives, positives, false alarms, negatives) per class, as floats."""
    cm = np.asarray(cm, dtype=float)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"a confusion matrix must be square, got shape {cm.shape}")
    tp = np.diag(cm)
    positives = cm.sum(axis=1)
    false_alarms = cm.sum(axis=0) - tp
    negatives = cm.sum() - positives
    return tp, positives, false_alarms, negatives


def mean_recall(cm):
    """Mean per-class recall over the classes that occur (lrid's balanced accuracy).

    Parameters
    ----------
    cm : ndarray, shape (n_labels, n_labels)
        Rows actual, columns predicted.

    Returns
    -------
    float
        NaN when no row is counted.

    Examples
    --------
    >>> mean_recall([[3, 1], [0, 2]])  # (3/4 + 2/2) / 2
    0.875
    """
    tp, positives, _, _ = _one_vs_rest(cm)
    present = positives > 0
    if not present.any():
        return float("nan")
    return float(np.mean(tp[present] / positives[present]))


#: Alias of :func:`mean_recall` (the name used by ``lrid_analysis.evaluate``).
balanced_accuracy = mean_recall


def per_class_balanced_accuracy(cm):
    """The original's balanced accuracy: ``(sensitivity + specificity) / 2`` per class.

    One-vs-rest for each class ``k``: sensitivity ``TP / P`` (recall of
    ``k``), specificity ``TN / N`` (rows of other classes not predicted as
    ``k``).

    Parameters
    ----------
    cm : ndarray, shape (n_labels, n_labels)
        Rows actual, columns predicted.

    Returns
    -------
    ndarray, shape (n_labels,)
        NaN for a class without positives or without negatives.

    Examples
    --------
    >>> per_class_balanced_accuracy([[3, 1], [0, 2]])  # class 0: (3/4 + 2/2) / 2
    array([0.875, 0.875])
    """
    tp, positives, false_alarms, negatives = _one_vs_rest(cm)
    with np.errstate(divide="ignore", invalid="ignore"):
        sensitivity = tp / positives
        specificity = (negatives - false_alarms) / negatives
    return (sensitivity + specificity) / 2.0


def dprime(cm, clip=DPRIME_CLIP):
    """One-vs-rest d' per class: ``clip(Z(TP/P)) - clip(Z(FP/N))``.

    Parameters
    ----------
    cm : ndarray, shape (n_labels, n_labels)
        Rows actual, columns predicted; counts or averaged counts.
    clip : float
        Each normal quantile is clipped to ``[-clip, clip]``.

    Returns
    -------
    ndarray, shape (n_labels,)
        NaN where a class has no positives or no negatives.

    Examples
    --------
    >>> dprime([[8, 2], [2, 8]]).round(4)  # Z(0.8) - Z(0.2)
    array([1.6832, 1.6832])
    """
    tp, positives, false_alarms, negatives = _one_vs_rest(cm)
    with np.errstate(divide="ignore", invalid="ignore"):
        hit_rate = tp / positives
        fa_rate = false_alarms / negatives
    return np.clip(norm.ppf(hit_rate), -clip, clip) - np.clip(norm.ppf(fa_rate), -clip, clip)


def _stack(cms):
    cms = np.asarray(cms, dtype=float)
    if cms.ndim != 3 or cms.shape[1] != cms.shape[2] or len(cms) == 0:
        raise ValueError(f"expected confusion matrices of shape (n_splits, n_labels, n_labels), got {cms.shape}")
    return cms


def mean_split_dprime(cms, clip=DPRIME_CLIP):
    """lrid's mean d': the mean over splits of each split's one-vs-rest d'.

    Parameters
    ----------
    cms : array-like, shape (n_splits, n_labels, n_labels)

    Returns
    -------
    ndarray, shape (n_labels,)
        NaN-aware mean (a split where a class is absent is skipped).

    Examples
    --------
    >>> mean_split_dprime([[[8, 2], [2, 8]], [[10, 0], [0, 10]]]).round(4)  # (1.6832 + 10) / 2
    array([5.8416, 5.8416])
    """
    per_split = np.array([dprime(cm, clip=clip) for cm in _stack(cms)])
    with np.errstate(invalid="ignore"):
        counts = np.sum(~np.isnan(per_split), axis=0)
        total = np.nansum(per_split, axis=0)
        return np.where(counts > 0, total / np.maximum(counts, 1), np.nan)


def dprime_of_mean_confusion(cms, clip=DPRIME_CLIP):
    """The original's mean d': d' of the split-mean confusion matrix.

    Parameters
    ----------
    cms : array-like, shape (n_splits, n_labels, n_labels)

    Returns
    -------
    ndarray, shape (n_labels,)

    Examples
    --------
    >>> dprime_of_mean_confusion([[[8, 2], [2, 8]], [[10, 0], [0, 10]]]).round(4)  # Z(0.9) - Z(0.1)
    array([2.5631, 2.5631])
    """
    return dprime(_stack(cms).mean(axis=0), clip=clip)
