"""Statistics over resampled train/test splits.

Scores from repeated train/test splits of one dataset are not independent:
the training sets overlap, so the plain paired t-test is overconfident.
Nadeau and Bengio (2003, "Inference for the generalization error", Machine
Learning 52:239-281) correct the variance of the mean of ``J`` per-split
differences ``d_j`` by the test/train size ratio:

    t = mean(d) / sqrt((1 / J + n_test / n_train) * var(d, ddof=1))

with ``J - 1`` degrees of freedom (:func:`corrected_ttest`). The same
corrected standard error gives a confidence interval for a mean score
(:func:`corrected_confidence_interval`). When ``n_test / n_train`` tends to
0 the corrected test becomes the ordinary one-sample (paired) t-test.

With few splits (fewer than ``min_splits``, 5 by default) or per-split
differences without any spread, a t statistic means nothing (two equal
differences gave ``t = -2.4e14``, ``p = 2.6e-15``). Then the p-value comes
from the exact sign-flip permutation test over the splits instead: under
the null hypothesis each difference is as likely negative as positive, so
the observed mean is compared with the means of all ``2^J`` sign patterns.
Its smallest two-sided p-value is ``2 / 2^J`` (0.5 for two splits, 0.125
for four): a handful of splits cannot give a small p. The permutation test
does not correct for overlapping training sets either; it only stops
impossible p-values.

The correction was derived for random resampling splits (the
category-balanced splits); for leave-one-value-out folds (held-out
architecture, curriculum, task) it is an approximation, applied with the
mean train and test sizes.

Several comparisons are corrected together with Holm's step-down method
(:func:`holm`, via ``statsmodels.stats.multitest.multipletests``).
:func:`compare_conditions` runs the whole comparison on a tidy table of
per-split scores.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests

__all__ = [
    "mean_sem",
    "CorrectedTTestResult",
    "corrected_ttest",
    "corrected_ttest_rel",
    "sign_flip_test",
    "corrected_confidence_interval",
    "holm",
    "compare_conditions",
]


def mean_sem(values, axis=0):
    """Mean and standard error of the mean (``std(ddof=1) / sqrt(n)``).

    Parameters
    ----------
    values : array-like
    axis : int

    Returns
    -------
    mean, sem : float or ndarray
        ``sem`` is NaN when fewer than two values.
    """
    values = np.asarray(values, dtype=float)
    n = values.shape[axis]
    mean = values.mean(axis=axis)
    if n < 2:
        return mean, np.full_like(mean, np.nan) if np.ndim(mean) else float("nan")
    return mean, values.std(axis=axis, ddof=1) / np.sqrt(n)


@dataclass(frozen=True)
class CorrectedTTestResult:
    """Result of :func:`corrected_ttest`.

    Attributes
    ----------
    statistic : float
        The corrected t.
    pvalue : float
    df : int
        ``J - 1``.
    mean : float
        Mean of the differences (minus ``popmean``).
    se : float
        Corrected standard error ``sqrt((1/J + n_test/n_train) var(d))``.
    method : {"t", "sign-flip"}
        Where ``pvalue`` comes from: the corrected t distribution, or the
        exact sign-flip permutation test (few splits or zero variance).
    """

    statistic: float
    pvalue: float
    df: int
    mean: float
    se: float
    method: str = "t"


def _check_sizes(n_train, n_test):
    if not (np.isfinite(n_train) and n_train > 0):
        raise ValueError(f"n_train must be a positive number of training rows, got {n_train}")
    if not (np.isfinite(n_test) and n_test >= 0):
        raise ValueError(f"n_test must be a non-negative number of test rows, got {n_test}")


def _corrected_se(values, n_train, n_test):
    values = np.asarray(values, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"expected a 1-D array of per-split values, got shape {values.shape}")
    if len(values) < 2:
        raise ValueError(f"need at least 2 splits for a t-test, got {len(values)}")
    if not np.isfinite(values).all():
        raise ValueError("per-split values contain NaN or inf")
    _check_sizes(n_train, n_test)
    J = len(values)
    return values, J, np.sqrt((1.0 / J + n_test / n_train) * values.var(ddof=1))


_ALTERNATIVES = ("two-sided", "greater", "less")
#: Largest number of splits whose 2^J sign patterns are enumerated (when they differ).
_MAX_ENUMERATED = 20


def _constant(values):
    """Whether per-split values are all equal up to rounding (1e-9 of their magnitude).

    Differences of scores that are equal on paper (0.7 - 0.75 and 0.8 - 0.85)
    differ in the last bits; their variance of ~1e-34 must count as zero.
    """
    return bool(np.ptp(values) <= 1e-9 * np.abs(values).max())


def _check_alternative(alternative):
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less', got {alternative!r}")


def sign_flip_test(differences, popmean=0.0, alternative="two-sided"):
    """Exact sign-flip permutation test of the mean of per-split values.

    Under the null hypothesis every centred value ``d_j - popmean`` is as
    likely negative as positive; the p-value is the fraction of the ``2^J``
    sign patterns whose sum is at least as extreme as the observed one.

    Parameters
    ----------
    differences : array-like, shape (J,)
        Per-split values, at most 20 of them unless they are all equal.
    popmean : float
        Mean under the null hypothesis.
    alternative : {"two-sided", "greater", "less"}

    Returns
    -------
    float
        The p-value, a multiple of ``1 / 2^J``; at least ``2 / 2^J``
        two-sided and ``1 / 2^J`` one-sided.

    Examples
    --------
    Of the 8 sign patterns of (1, 2, 3), only (1, 2, 3) and (-1, -2, -3)
    have a sum as far from 0 as 6:

    >>> sign_flip_test([1.0, 2.0, 3.0])
    0.25
    >>> sign_flip_test([1.0, 2.0, 3.0], alternative="greater")
    0.125
    """
    _check_alternative(alternative)
    centred = np.asarray(differences, dtype=float) - popmean
    if centred.ndim != 1 or len(centred) == 0 or not np.isfinite(centred).all():
        raise ValueError(f"expected a non-empty 1-D array of finite per-split values, got {differences!r}")
    J = len(centred)
    if _constant(centred):  # all equal: a pattern's sum depends only on how many signs it flips
        flipped = np.arange(J + 1)
        sums = centred.mean() * (J - 2 * flipped)
        weights = np.array([math.comb(J, int(m)) for m in flipped], dtype=float)
    elif J <= _MAX_ENUMERATED:
        patterns = np.arange(2**J)[:, None] >> np.arange(J)[None, :] & 1
        sums = (1 - 2 * patterns) @ centred
        weights = np.ones(len(sums))
    else:
        raise ValueError(f"the exact sign-flip test enumerates at most 2^{_MAX_ENUMERATED} patterns; got {J} splits")
    observed = centred.sum()
    tol = 1e-9 * max(1.0, np.abs(centred).sum())  # sums equal to the observed one up to rounding count as ties
    if alternative == "two-sided":
        hit = np.abs(sums) >= abs(observed) - tol
    elif alternative == "greater":
        hit = sums >= observed - tol
    else:
        hit = sums <= observed + tol
    return float(weights[hit].sum() / 2.0**J)


def corrected_ttest(differences, n_train, n_test, popmean=0.0, alternative="two-sided", method="auto",
                    min_splits=5):
    """Nadeau and Bengio's corrected resampled t-test on per-split values.

    Parameters
    ----------
    differences : array-like, shape (J,)
        Per-split paired differences (or per-split scores, compared with
        ``popmean``, e.g. chance accuracy).
    n_train, n_test : float
        Train and test rows per split.
    popmean : float
        Mean under the null hypothesis.
    alternative : {"two-sided", "greater", "less"}
    method : {"auto", "t", "sign-flip"}
        ``"auto"``: the corrected t-test with at least ``min_splits``
        splits whose values vary, else the exact sign-flip test
        (:func:`sign_flip_test`). ``"t"`` forces the t-test: zero variance
        then gives NaN (with a ``RuntimeWarning``).
    min_splits : int
        Fewest splits for the t-test under ``"auto"`` (5: with 4 degrees of
        freedom the t distribution's tails are still usable, while the
        sign-flip test of 5 splits cannot go below p = 0.0625).

    Returns
    -------
    CorrectedTTestResult
        ``t = (mean(d) - popmean) / sqrt((1/J + n_test/n_train) var(d, ddof=1))``
        on ``J - 1`` degrees of freedom (NaN when the variance is zero);
        ``method`` says where the p-value came from.

    Examples
    --------
    Two equal differences are no evidence at all:

    >>> result = corrected_ttest([0.02, 0.02], n_train=300, n_test=100)
    >>> result.method, result.pvalue, result.statistic
    ('sign-flip', 0.5, nan)
    >>> corrected_ttest([0.01, 0.03, -0.02, 0.04, 0.02], 75, 25).method
    't'
    """
    _check_alternative(alternative)
    if method not in ("auto", "t", "sign-flip"):
        raise ValueError(f"method must be 'auto', 't' or 'sign-flip', got {method!r}")
    values, J, se = _corrected_se(differences, n_train, n_test)
    diff = values.mean() - popmean
    df = J - 1
    constant = _constant(values)
    if constant:
        se, t = 0.0, np.nan
    else:
        t = np.float64(diff) / se
    if method == "sign-flip" or (method == "auto" and (J < min_splits or constant)):
        p = sign_flip_test(values, popmean, alternative)
        return CorrectedTTestResult(float(t), p, df, float(diff), float(se), "sign-flip")
    if constant:
        warnings.warn(f"the {J} per-split values have zero variance: no t-test possible (p = NaN); "
                      "use method='auto' for the exact sign-flip test", RuntimeWarning, stacklevel=2)
        return CorrectedTTestResult(np.nan, np.nan, df, float(diff), 0.0, "t")
    if alternative == "two-sided":
        p = 2.0 * scipy_stats.t.sf(np.abs(t), df)
    elif alternative == "greater":
        p = scipy_stats.t.sf(t, df)
    else:
        p = scipy_stats.t.cdf(t, df)
    return CorrectedTTestResult(float(t), float(p), df, float(diff), float(se), "t")


def corrected_ttest_rel(a, b, n_train, n_test, alternative="two-sided", method="auto", min_splits=5):
    """Corrected resampled t-test of paired per-split scores ``a`` vs ``b`` (tests ``mean(a - b) = 0``).

    See :func:`corrected_ttest` for the parameters and the result.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired scores must have the same shape, got {a.shape} and {b.shape}")
    return corrected_ttest(a - b, n_train, n_test, alternative=alternative, method=method, min_splits=min_splits)


def corrected_confidence_interval(scores, n_train, n_test, confidence=0.95):
    """Confidence interval of a mean per-split score with the corrected variance.

    Parameters
    ----------
    scores : array-like, shape (J,)
    n_train, n_test : float
    confidence : float

    Returns
    -------
    mean, low, high : float
        ``mean ± t_{J-1, (1+confidence)/2} * sqrt((1/J + n_test/n_train) var(scores))``.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    values, J, se = _corrected_se(scores, n_train, n_test)
    half = scipy_stats.t.ppf(0.5 + confidence / 2.0, J - 1) * se
    mean = float(values.mean())
    return mean, mean - float(half), mean + float(half)


def holm(pvalues, alpha=0.05):
    """Holm's step-down correction for multiple comparisons.

    Parameters
    ----------
    pvalues : array-like, shape (m,)
        NaN entries are left out of the family and stay NaN (not rejected).
    alpha : float
        Family-wise error rate.

    Returns
    -------
    reject : ndarray of bool, shape (m,)
    p_adjusted : ndarray, shape (m,)
    """
    pvalues = np.asarray(pvalues, dtype=float)
    reject = np.zeros(pvalues.shape, dtype=bool)
    adjusted = np.full(pvalues.shape, np.nan)
    finite = np.isfinite(pvalues)
    if finite.any():
        r, p, _, _ = multipletests(pvalues[finite], alpha=alpha, method="holm")
        reject[finite], adjusted[finite] = r, p
    return reject, adjusted


def _size(table, column, given, rows):
    if given is not None:
        return float(given)
    if column not in table.columns:
        raise ValueError(f"pass {column}= or give the table an {column!r} column (rows per split)")
    return float(table.loc[rows, column].mean())


def compare_conditions(table, condition_col, value_col="test_accuracy", split_col="split", reference=None,
                       n_train=None, n_test=None, alpha=0.05, method="auto", min_splits=5):
    """Paired comparisons of conditions over splits, Holm-corrected.

    Parameters
    ----------
    table : pandas.DataFrame
        Tidy per-split scores: one row per (condition, split).
    condition_col : str
        Column naming the condition (classifier, observable set, ...).
    value_col : str
        Score to compare.
    split_col : str
        Column pairing the rows: the same split of different conditions.
    reference : optional
        Compare every other condition with this one; default all pairs.
    n_train, n_test : float, optional
        Rows per split for the variance correction; default the mean of the
        table's ``n_train`` / ``n_test`` columns over the compared rows.
    alpha : float
        Family-wise error rate for Holm's correction.
    method, min_splits
        See :func:`corrected_ttest`.

    Returns
    -------
    pandas.DataFrame
        One row per comparison: ``condition_a``, ``condition_b``, ``mean_a``,
        ``mean_b``, ``difference`` (mean of a - b over shared splits),
        ``t``, ``df``, ``p``, ``p_holm``, ``reject``, ``n_splits`` and
        ``test`` (``"t"`` or ``"sign-flip"``). Pairs use the splits both
        conditions have (at least two).
    """
    for column in (condition_col, value_col, split_col):
        if column not in table.columns:
            raise ValueError(f"table has no column {column!r}; columns are {list(table.columns)}")
    duplicated = table.duplicated([condition_col, split_col])
    if duplicated.any():
        row = table.loc[duplicated].iloc[0]
        raise ValueError(
            f"more than one row for {condition_col}={row[condition_col]!r}, {split_col}={row[split_col]!r}"
        )
    conditions = list(pd.unique(table[condition_col]))
    if len(conditions) < 2:
        raise ValueError(f"need at least two values of {condition_col!r} to compare, got {conditions}")
    if reference is not None:
        if reference not in conditions:
            raise ValueError(f"reference {reference!r} is not a value of {condition_col!r}: {conditions}")
        pairs = [(c, reference) for c in conditions if c != reference]
    else:
        pairs = list(combinations(conditions, 2))

    scores = table.pivot(index=split_col, columns=condition_col, values=value_col)
    rows = []
    for a, b in pairs:
        both = scores[[a, b]].dropna()
        if len(both) < 2:
            raise ValueError(f"conditions {a!r} and {b!r} share {len(both)} split(s); need at least 2")
        used = table[condition_col].isin([a, b]) & table[split_col].isin(both.index)
        result = corrected_ttest(both[a].to_numpy() - both[b].to_numpy(),
                                 _size(table, "n_train", n_train, used), _size(table, "n_test", n_test, used),
                                 method=method, min_splits=min_splits)
        rows.append({
            "condition_a": a,
            "condition_b": b,
            "mean_a": float(both[a].mean()),
            "mean_b": float(both[b].mean()),
            "difference": result.mean,
            "t": result.statistic,
            "df": result.df,
            "p": result.pvalue,
            "n_splits": len(both),
            "test": result.method,
        })
    out = pd.DataFrame(rows)
    out["reject"], out["p_holm"] = holm(out["p"].to_numpy(), alpha=alpha)
    return out[["condition_a", "condition_b", "mean_a", "mean_b", "difference", "t", "df", "p", "p_holm",
                "reject", "n_splits", "test"]]
