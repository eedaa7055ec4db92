"""Summaries and statistical comparisons of per-split score tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import stats

__all__ = ["summarize", "compare", "confidence_intervals", "format_summary"]


def summarize(table, by, value="test_accuracy", name="accuracy"):
    """Mean, s.e.m. and count of a score per condition.

    Returns
    -------
    pandas.DataFrame
        Columns ``by``, ``{name}_mean``, ``{name}_sem`` (``std(ddof=1)/sqrt(n)``),
        ``n_splits``; conditions in first-appearance order.
    """
    rows = []
    for keys, part in table.groupby(list(by), sort=False, dropna=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        values = part[value].to_numpy(dtype=float)
        mean, sem = stats.mean_sem(values)
        rows.append({**dict(zip(by, keys)), f"{name}_mean": float(mean), f"{name}_sem": float(sem),
                     "n_splits": len(values)})
    return pd.DataFrame(rows)


def compare(table, condition_col, within=(), reference=None, value="test_accuracy", split_col="split",
            family=None):
    """:func:`lrid_analysis.stats.compare_conditions` per group, Holm within each group.

    Parameters
    ----------
    table : pandas.DataFrame
        Per-split scores.
    condition_col : str
        Column whose values are compared.
    within : sequence of str
        Columns defining the groups (families); one Holm correction each.
    reference : value, callable or None
        Compare every condition with this value (a callable receives the
        group's key dict); None or a value absent from a group: all pairs.
    value, split_col : str
    family : str, optional
        Name of the comparison family (default ``"<condition_col> vs <reference>"``,
        or ``"<condition_col> pairs"``).

    Returns
    -------
    pandas.DataFrame
        ``family``, ``compared``, the ``within`` columns, then the columns of
        :func:`~lrid_analysis.stats.compare_conditions`. Empty when nothing
        can be compared.
    """
    within = list(within)
    groups = table.groupby(within, sort=False, dropna=False) if within else [((), table)]
    frames = []
    for keys, part in groups:
        keys = keys if isinstance(keys, tuple) else (keys,)
        key = dict(zip(within, keys))
        conditions = list(pd.unique(part[condition_col]))
        if len(conditions) < 2 or part.groupby(condition_col)[split_col].nunique().min() < 2:
            continue
        wanted = reference(key) if callable(reference) else reference
        ref = wanted if wanted in conditions else None
        name = family or (f"{condition_col} vs {ref}" if ref is not None else f"{condition_col} pairs")
        if wanted is not None and ref is None:
            name += f" (no {wanted!r} in the run: all pairs)"
        result = stats.compare_conditions(part, condition_col, value_col=value, split_col=split_col, reference=ref)
        for position, (column, v) in enumerate(key.items()):
            result.insert(position, column, v)
        result.insert(0, "group", ", ".join(f"{c}={v}" for c, v in key.items()))
        result.insert(0, "compared", condition_col)
        result.insert(0, "family", name)
        frames.append(result)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def format_summary(summary):
    """A summary table with ``*_mean`` / ``*_sem`` pairs shown as ``mean ± sem`` in percent."""
    frame = summary.copy()
    for column in [c for c in summary.columns if c.endswith("_mean")]:
        stem = column[: -len("_mean")]
        sem_col = f"{stem}_sem"
        mean = frame.pop(column).astype(float)
        sem = frame.pop(sem_col).astype(float) if sem_col in frame.columns else pd.Series(np.nan, index=frame.index)
        frame[stem] = [
            f"{100 * m:5.1f}" + (f" ± {100 * s:4.1f}" if np.isfinite(s) else "") if np.isfinite(m) else "n/a"
            for m, s in zip(mean, sem)
        ]
        frame = frame.rename(columns={stem: f"{stem} (%)"})
    with pd.option_context("display.max_rows", 500, "display.max_columns", 50, "display.width", 200):
        return frame.to_string(index=False)


def confidence_intervals(table, by, value="test_accuracy", name="accuracy", confidence=0.95):
    """Corrected confidence intervals (Nadeau & Bengio) of a per-split score's mean, per condition.

    Uses :func:`lrid_analysis.stats.corrected_confidence_interval` with each
    condition's mean ``n_train`` and ``n_test``; NaN for a condition with
    fewer than two splits.

    Returns
    -------
    pandas.DataFrame
        Columns ``by``, ``{name}_ci_low``, ``{name}_ci_high``; conditions in
        first-appearance order.

    Examples
    --------
    >>> t = pd.DataFrame({"c": "a", "test_accuracy": [0.8, 0.9], "n_train": 30, "n_test": 10})
    >>> ci = confidence_intervals(t, ["c"])
    >>> bool(ci.accuracy_ci_low[0] < 0.85 < ci.accuracy_ci_high[0])
    True
    """
    rows = []
    for keys, part in table.groupby(list(by), sort=False, dropna=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        low = high = np.nan
        if len(part) >= 2:
            _, low, high = stats.corrected_confidence_interval(part[value].to_numpy(dtype=float),
                                                               float(part["n_train"].mean()),
                                                               float(part["n_test"].mean()), confidence)
        rows.append({**dict(zip(by, keys)), f"{name}_ci_low": low, f"{name}_ci_high": high})
    return pd.DataFrame(rows, columns=[*by, f"{name}_ci_low", f"{name}_ci_high"])
