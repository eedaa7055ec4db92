"""The splits of the experiments, drawn once per run from the view's metadata."""

from __future__ import annotations

import numpy as np

from ..splits import GROUPINGS, CategoryBalancedSplit, NetworkBalancedSplit
from .options import ExperimentError

__all__ = ["materialise", "category_balanced_pairs"]


def materialise(splitter, view, what):
    """``(pairs, fold_names)`` of a splitter bound to ``view``'s metadata.

    Raises
    ------
    ExperimentError
        (exit code 1) when the data cannot be split, saying ``what`` was tried.
    """
    try:
        pairs = [(np.asarray(a, dtype=np.intp), np.asarray(b, dtype=np.intp))
                 for a, b in splitter.split(np.zeros(len(view)), view.y, groups=view.meta)]
        names = [str(n) for n in splitter.fold_names(groups=view.meta)]
    except ValueError as err:
        raise ExperimentError(f"{what}: {err}", 1) from None
    if len(names) != len(pairs):
        names = [str(k) for k in range(len(pairs))]
    return pairs, names


def category_balanced_pairs(view, n_splits, random_state, grouping="trajectory"):
    """The category-balanced splits (Fig. 2a) of a view, materialised.

    Parameters
    ----------
    view : AnalysisView
    n_splits, random_state : int
    grouping : {"trajectory", "network"}
        ``"trajectory"`` (default, the paper): balanced over layer
        trajectories (:class:`~lrid_analysis.splits.CategoryBalancedSplit`),
        so layers of one network fall in train and test. ``"network"``:
        balanced over whole networks
        (:class:`~lrid_analysis.splits.NetworkBalancedSplit`, by ``run_id``).

    Returns
    -------
    pairs : list of (ndarray, ndarray)
        Train and test row indices of every split.
    names : list of str

    Examples
    --------
    >>> from lrid_analysis.experiments.data import load_data
    >>> view, _ = load_data("embedded", ["gradavgsq_id"])
    >>> pairs, names = category_balanced_pairs(view, 2, 0)
    >>> len(names), [len(test) for _, test in pairs]  # 4 x 25% of the 4,909 trajectories of the smallest rule (IA)
    (2, [4908, 4908])
    >>> pairs, _ = category_balanced_pairs(view, 1, 0, grouping="network")
    >>> train, test = pairs[0]
    >>> set(view.meta.run_id.iloc[train]) & set(view.meta.run_id.iloc[test])
    set()
    """
    if grouping not in GROUPINGS:
        raise ExperimentError(f"unknown grouping {grouping!r}; use one of {', '.join(GROUPINGS)}")
    cls = NetworkBalancedSplit if grouping == "network" else CategoryBalancedSplit
    splitter = cls(n_splits=n_splits, random_state=int(random_state), meta=view.meta)
    return materialise(splitter, view, f"cannot draw category-balanced splits (grouping {grouping})")
