"""Train/test splitters over trajectory metadata, in scikit-learn style.

Every splitter is a scikit-learn cross-validator
(:class:`sklearn.model_selection.BaseCrossValidator` that consumes
``groups``): ``split(X, y=None, groups=None)`` yields ``(train_index,
test_index)`` integer arrays, and ``get_n_splits`` and ``fold_names`` say how
many and which. The splitters need the trajectory metadata (learning rule,
architecture, task, ...), given in one of three ways:

* as ``groups``: ``split(X, y, groups=view.meta)`` with any ``X`` of the same
  length, which is what scikit-learn tools forward
  (``cross_val_score(est, X, y, groups=meta, cv=splitter)``,
  ``GridSearchCV(est, grid, cv=splitter).fit(X, y, groups=meta)``). The
  held-out splitters also take a 1-D ``groups`` array, one held-out value per
  row, as :class:`sklearn.model_selection.LeaveOneGroupOut` does (the rules to
  balance then come from ``y``);
* as ``X``: ``splitter.split(view)`` or ``splitter.split(view.meta)``, an
  :class:`~lrid_analysis.dataset.AnalysisView` or its ``meta`` DataFrame;
* at construction: ``Splitter(..., meta=view.meta)`` then ``split(X)``.

``groups`` wins over ``X``, and ``X`` over ``meta=``.

:class:`CategoryBalancedSplit`
    The ten category-balanced 75%/25% splits of the paper (Fig. 2a). The draw
    follows the original project's procedure exactly (see the class).
:class:`NetworkBalancedSplit`
    The same rule-balanced splits drawn over whole networks: every row
    (layer trajectory) of a network lies on the same side, and the test set
    holds the same number of networks of every rule.
:class:`HeldOutSplit`, :class:`HeldOutArchitecture`,
:class:`HeldOutCurriculum`, :class:`HeldOutTask`
    One fold per value of a metadata column (or tuple of columns): train on
    all other values, test on the held-out one (Fig. 2b).
:func:`window_transfer_pairs`
    The nine (train window, test window) pairs of Fig. 4b. The splits stay
    row splits; the experiment builds train features from one window and test
    features from another (:func:`lrid_analysis.features.window`, and
    ``X_test`` of :func:`lrid_analysis.evaluate.cross_validate`).

Every random draw takes ``random_state`` (an int, the default 0, gives the
same splits at every call; a ``numpy.random.RandomState`` is advanced). The
former ``seed=`` still works, with a ``FutureWarning``.
"""

from __future__ import annotations

import inspect
import math
import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.model_selection import BaseCrossValidator
from sklearn.model_selection._split import GroupsConsumerMixin
from sklearn.utils import check_random_state

from .dataset import AnalysisView
from .features import WINDOWS

__all__ = [
    "CategoryBalancedSplit",
    "NetworkBalancedSplit",
    "GROUPINGS",
    "HeldOutSplit",
    "HeldOutArchitecture",
    "HeldOutCurriculum",
    "HeldOutTask",
    "balanced_draw",
    "window_transfer_pairs",
]


def _resolve_meta(X, groups, own_meta):
    """The metadata DataFrame to split: from ``groups``, else ``X``, else the one given at construction."""
    if isinstance(groups, AnalysisView):
        groups = groups.meta
    if isinstance(groups, pd.DataFrame):
        meta, origin = groups, "groups"
    elif isinstance(X, AnalysisView):
        return X.meta
    elif isinstance(X, pd.DataFrame):
        return X
    elif own_meta is None:
        return None
    else:
        meta, origin = own_meta, "the splitter's metadata"
    if X is not None and len(X) != len(meta):
        raise ValueError(
            f"X has {len(X)} rows but {origin} has {len(meta)}; "
            "pass the matching metadata (or an AnalysisView) to split()"
        )
    return meta


def _short(value):
    """A one-line repr of a constructor argument (DataFrames and arrays by their shape)."""
    if isinstance(value, (pd.DataFrame, np.ndarray)):
        return f"<{type(value).__name__} of shape {value.shape}>"
    if callable(value) and not isinstance(value, type):
        return getattr(value, "__name__", repr(value))
    return repr(value)


def _deprecated(message):
    """A FutureWarning pointing at the first caller outside this module."""
    frame, level = inspect.currentframe(), 1
    while frame is not None and frame.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, FutureWarning, stacklevel=level)


class _MetadataSplitter(GroupsConsumerMixin, BaseCrossValidator):
    """What the lrid splitters share: ``groups`` requested, ``random_state``, a repr from ``__init__``."""

    #: The splitter reads the rows' metadata: give it the metadata DataFrame as ``groups``
    #: (:func:`lrid_analysis.runner.resolve_splits` does).
    metadata_groups = True

    def _set_random_state(self, random_state, seed):
        if seed is not None:
            _deprecated(f"{type(self).__name__}(seed=...) is deprecated; use random_state=")
            random_state = seed
        self.random_state = random_state

    @property
    def seed(self):
        """Deprecated alias of ``random_state``."""
        _deprecated("the splitter's seed is deprecated; use random_state")
        return self.random_state

    def __repr__(self):
        names = [p for p in inspect.signature(type(self).__init__).parameters if p not in ("self", "seed")]
        args = ", ".join(f"{name}={_short(getattr(self, name, None))}" for name in names)
        return f"{type(self).__name__}({args})"


def _n_rows(X, y, meta):
    for obj in (meta, X, y):
        if obj is not None:
            return len(obj)
    raise ValueError("nothing to split: pass an AnalysisView, a metadata DataFrame, or X and y")


def _labels(meta, y, label_col, n_rows):
    if meta is not None:
        if label_col not in meta.columns:
            raise ValueError(f"metadata has no column {label_col!r} to balance on; columns are {list(meta.columns)}")
        labels = meta[label_col]
        if labels.isna().any():
            raise ValueError(f"column {label_col!r} has missing values; cannot balance on it")
        return labels.to_numpy(dtype=object)
    if y is None:
        raise ValueError("pass a metadata DataFrame (or AnalysisView), or y, to know the categories")
    labels = np.asarray(y, dtype=object)
    if len(labels) != n_rows:
        raise ValueError(f"y has {len(labels)} entries for {n_rows} rows")
    return labels


def _mask(filt, meta, n_rows, name):
    """Row indices admitted by a filter: None, a boolean mask, or a callable on the metadata."""
    if filt is None:
        return np.arange(n_rows)
    if callable(filt):
        if meta is None:
            raise ValueError(f"{name} is a callable on the metadata, but no metadata was given")
        filt = filt(meta)
    mask = np.asarray(filt)
    if mask.dtype != bool or mask.shape != (n_rows,):
        raise ValueError(
            f"{name} must be a boolean mask of shape ({n_rows},), got dtype {mask.dtype} shape {mask.shape}"
        )
    return np.flatnonzero(mask)


def balanced_draw(labels, train_pool, test_pool, n_train, n_test, rng):
    """One category-balanced train/test split drawn as the original project did.

    First the test rows: for each category of the test pool in sorted order,
    ``rng.permutation`` of that category's candidates and the first
    ``n_test`` are kept. The chosen test rows are removed from the train
    pool (the rest kept sorted), then the train rows are drawn the same way
    for each category of the train pool with ``n_train`` per category.

    Parameters
    ----------
    labels : ndarray, shape (n_rows,)
        Category of every row.
    train_pool, test_pool : ndarray of int
        Sorted row indices eligible for training and testing (may overlap).
    n_train, n_test : int
        Rows per category.
    rng : numpy.random.RandomState
        Advanced in place.

    Returns
    -------
    train, test : ndarray of int
        Sorted, disjoint.

    Raises
    ------
    ValueError
        When a category has fewer candidates than requested.
    """
    test = []
    for category in np.unique(labels[test_pool]):
        candidates = test_pool[labels[test_pool] == category]
        if len(candidates) < n_test:
            raise ValueError(
                f"asked for {n_test} test rows of category {category!r} but only {len(candidates)} are available"
            )
        test.extend(candidates[rng.permutation(len(candidates))[:n_test]])
    test = np.sort(np.asarray(test, dtype=np.intp))
    remaining = np.setdiff1d(train_pool, test)
    train = []
    for category in np.unique(labels[train_pool]):
        candidates = remaining[labels[remaining] == category]
        if len(candidates) < n_train:
            raise ValueError(
                f"asked for {n_train} train rows of category {category!r} but only {len(candidates)} remain "
                "after removing the test rows"
            )
        train.extend(candidates[rng.permutation(len(candidates))[:n_train]])
    train = np.sort(np.asarray(train, dtype=np.intp))
    return train, test


def _sizes(train_size, test_size):
    """Resolve (train_size, test_size) specs the way scikit-learn's splitters do."""
    for name, value in (("train_size", train_size), ("test_size", test_size)):
        if value is None or isinstance(value, Integral):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 row per category, got {value}")
        elif isinstance(value, Real):
            if not 0 < value < 1:
                raise ValueError(f"{name} as a fraction must be in (0, 1), got {value}")
        else:
            raise ValueError(f"{name} must be None, an int (rows per category) or a float fraction, got {value!r}")
    if train_size is None and test_size is None:
        return 0.75, 0.25
    if isinstance(train_size, Real) and not isinstance(train_size, Integral) and test_size is None:
        return train_size, 1.0 - train_size
    if isinstance(test_size, Real) and not isinstance(test_size, Integral) and train_size is None:
        return 1.0 - test_size, test_size
    return train_size, test_size


def _count(size, smallest):
    if isinstance(size, Integral):
        return int(size)
    return int(math.floor(size * smallest + 1e-9))


class CategoryBalancedSplit(_MetadataSplitter):
    """Repeated category-balanced train/test splits (the paper's ten 75%/25% splits).

    Each split holds the same number of rows of every category (learning
    rule) in train and in test. The draw is the original project's
    (``cross_validation.get_splits`` of neuroailab/lr-identify): a single
    ``numpy.random.RandomState(random_state)`` serves all splits; per split,
    for each category in sorted order, a permutation of that category's
    candidate test rows keeps the first ``n_test``; the test rows are removed
    from the train pool; then, per category, a permutation of the remaining
    candidates keeps the first ``n_train`` (see :func:`balanced_draw`). With
    the public data and the defaults this gives 3,888 train and 1,296 test
    rows per rule.

    Parameters
    ----------
    n_splits : int
        Number of splits (10 in the paper).
    train_size, test_size : float, int or None
        A float is a fraction of the smallest category's count in the
        respective pool, rounded down; an int is a number of rows per
        category. Both None: 0.75 and 0.25 (the paper). One float given: the
        other is its complement; one int given: the other is the rest of the
        smallest category.
    label_col : str
        Metadata column whose categories are balanced.
    train_filter, test_filter : None, boolean mask or callable
        Rows eligible for training / testing: a boolean array over the rows,
        or a callable taking the metadata DataFrame and returning one. Test
        rows are always removed from the train pool.
    random_state : int or numpy.random.RandomState
        Seed of the draw (an int gives the same splits at every call).
    meta : pandas.DataFrame, optional
        Metadata used when ``split`` gets neither a metadata DataFrame (as
        ``X`` or ``groups``) nor an AnalysisView.
    seed : int, optional
        Deprecated alias of ``random_state``.

    Attributes
    ----------
    n_train_ : int
        Train rows per category (set by ``split``).
    n_test_ : int
        Test rows per category (set by ``split``).

    Examples
    --------
    >>> import pandas as pd
    >>> meta = pd.DataFrame({"learning_rule": ["adam", "sgdm"] * 4})
    >>> cv = CategoryBalancedSplit(n_splits=2, random_state=0)
    >>> cv
    CategoryBalancedSplit(n_splits=2, train_size=None, test_size=None, label_col='learning_rule', train_filter=None, test_filter=None, random_state=0, meta=None)
    >>> for train, test in cv.split(None, groups=meta):
    ...     print(train, test)
    [0 2 3 5 6 7] [1 4]
    [0 1 3 4 5 6] [2 7]
    >>> cv.n_train_, cv.n_test_
    (3, 1)

    ``y`` alone is enough when the categories are the classes:

    >>> [test.tolist() for _, test in cv.split(np.zeros((8, 3)), meta["learning_rule"])]
    [[1, 4], [2, 7]]
    """

    def __init__(self, n_splits=10, train_size=None, test_size=None, label_col="learning_rule",
                 train_filter=None, test_filter=None, random_state=0, meta=None, seed=None):
        if int(n_splits) < 1:
            raise ValueError(f"n_splits must be >= 1, got {n_splits}")
        self.n_splits = int(n_splits)
        self.train_size = train_size
        self.test_size = test_size
        self.label_col = label_col
        self.train_filter = train_filter
        self.test_filter = test_filter
        self._set_random_state(random_state, seed)
        self.meta = meta

    def get_n_splits(self, X=None, y=None, groups=None):
        """Number of splits."""
        return self.n_splits

    def fold_names(self, X=None, groups=None):
        """Labels of the splits: ``["split0", "split1", ...]``."""
        return [f"split{i}" for i in range(self.n_splits)]

    def _pools(self, X, y, groups):
        if groups is not None and not isinstance(groups, (pd.DataFrame, AnalysisView)):
            raise ValueError(
                "CategoryBalancedSplit takes groups only as the metadata DataFrame (with a "
                f"{self.label_col!r} column); pass the categories as y"
            )
        meta = _resolve_meta(X, groups, self.meta)
        n_rows = _n_rows(X, y, meta)
        labels = _labels(meta, y, self.label_col, n_rows)
        train_pool = _mask(self.train_filter, meta, n_rows, "train_filter")
        test_pool = _mask(self.test_filter, meta, n_rows, "test_filter")
        return labels, train_pool, test_pool

    def counts(self, X=None, y=None, groups=None):
        """The resolved (train, test) rows per category for this data."""
        return self._counts(*self._pools(X, y, groups))

    def _counts(self, labels, train_pool, test_pool):
        for name, pool in (("train", train_pool), ("test", test_pool)):
            if len(pool) == 0:
                raise ValueError(f"the {name} filter admits no rows")
        smallest_train = np.unique(labels[train_pool], return_counts=True)[1].min()
        smallest_test = np.unique(labels[test_pool], return_counts=True)[1].min()
        train_size, test_size = _sizes(self.train_size, self.test_size)
        n_train = _count(train_size, smallest_train) if train_size is not None else None
        n_test = _count(test_size, smallest_test) if test_size is not None else None
        if n_train is None:  # an int test count alone: train on the rest of the smallest category
            n_train = smallest_train - n_test
        if n_test is None:
            n_test = smallest_test - n_train
        if n_train < 1 or n_test < 1:
            raise ValueError(
                f"too few rows for a balanced split: {n_train} train and {n_test} test rows per category "
                f"(smallest category: {smallest_train} train candidates, {smallest_test} test candidates)"
            )
        return n_train, n_test

    def split(self, X=None, y=None, groups=None):
        """Yield the ``(train_index, test_index)`` of every split.

        Parameters
        ----------
        X : AnalysisView, pandas.DataFrame or array-like of shape (n_rows, ...), optional
            The view or its metadata, or any array when the metadata comes
            as ``groups`` or ``meta=`` (or ``y`` holds the categories).
        y : array-like of shape (n_rows,), optional
            Categories, used only when no metadata is available.
        groups : pandas.DataFrame of shape (n_rows, n_meta), optional
            The metadata (as scikit-learn's model-selection tools forward it).

        Yields
        ------
        train, test : ndarray of int
            Sorted, disjoint row indices.
        """
        labels, train_pool, test_pool = self._pools(X, y, groups)
        self.n_train_, self.n_test_ = (int(n) for n in self._counts(labels, train_pool, test_pool))
        rng = check_random_state(self.random_state)
        for _ in range(self.n_splits):
            yield balanced_draw(labels, train_pool, test_pool, self.n_train_, self.n_test_, rng)


#: The unit a category-balanced split draws: ``"trajectory"`` (the paper's
#: draw, :class:`CategoryBalancedSplit`) or ``"network"``
#: (:class:`NetworkBalancedSplit`).
GROUPINGS = ("trajectory", "network")


class NetworkBalancedSplit(CategoryBalancedSplit):
    """Repeated rule-balanced train/test splits over whole networks.

    The paper's splits (:class:`CategoryBalancedSplit`) draw layer
    trajectories, so the layers of one network fall on both sides and a
    classifier can recognise the network rather than its learning rule. This
    splitter draws networks instead: the networks (distinct values of
    ``network_col``, each with a single category) take the place of the
    rows in :func:`balanced_draw`, so each split has the same number of
    networks of every category in train and in test, and all rows of a
    network lie on one side. Row counts per category may differ when
    networks have different numbers of layers.

    Parameters
    ----------
    n_splits : int
    train_size, test_size : float, int or None
        As in :class:`CategoryBalancedSplit`, counted in networks: a float is
        a fraction of the smallest category's number of networks in the
        pool, an int a number of networks per category.
    label_col : str
        Metadata column whose categories are balanced; constant within a network.
    network_col : str
        Metadata column identifying a network (``run_id`` in the data contract).
    train_filter, test_filter : None, boolean mask or callable
        Rows eligible for training / testing. A network enters a pool when
        any of its rows is eligible; only its eligible rows are used.
    random_state : int or numpy.random.RandomState
    meta : pandas.DataFrame, optional
    seed : int, optional
        Deprecated alias of ``random_state``.

    Attributes
    ----------
    n_train_, n_test_ : int
        Train and test networks per category (set by ``split``).

    Examples
    --------
    >>> import pandas as pd
    >>> meta = pd.DataFrame({"run_id": ["a", "a", "b", "b", "c", "c", "d", "d"],
    ...                      "learning_rule": ["adam"] * 4 + ["sgdm"] * 4})
    >>> cv = NetworkBalancedSplit(n_splits=2, train_size=1, test_size=1, random_state=0)
    >>> for train, test in cv.split(None, groups=meta):
    ...     print(train, test)
    [0 1 6 7] [2 3 4 5]
    [2 3 4 5] [0 1 6 7]
    >>> cv.n_train_, cv.n_test_
    (1, 1)
    """

    def __init__(self, n_splits=10, train_size=None, test_size=None, label_col="learning_rule",
                 network_col="run_id", train_filter=None, test_filter=None, random_state=0, meta=None,
                 seed=None):
        super().__init__(n_splits=n_splits, train_size=train_size, test_size=test_size, label_col=label_col,
                         train_filter=train_filter, test_filter=test_filter, random_state=random_state,
                         meta=meta, seed=seed)
        self.network_col = network_col

    def _network_pools(self, X, y, groups):
        """Row labels and pools, the network code of every row, and the networks' labels and pools."""
        labels, train_pool, test_pool = self._pools(X, y, groups)
        meta = _resolve_meta(X, groups, self.meta)
        if meta is None:
            raise ValueError("NetworkBalancedSplit needs the metadata (with a network column) as groups, X or meta=")
        if self.network_col not in meta.columns:
            raise ValueError(f"metadata has no network column {self.network_col!r}; columns are {list(meta.columns)}")
        if meta[self.network_col].isna().any():
            raise ValueError(f"column {self.network_col!r} has missing values; cannot group rows into networks")
        codes, _ = pd.factorize(meta[self.network_col], sort=True)
        per_network = pd.Series(labels).groupby(codes).agg(["nunique", "first"])
        mixed = per_network.index[per_network["nunique"] > 1]
        if len(mixed):
            raise ValueError(
                f"{len(mixed)} network(s) of {self.network_col!r} have rows of several {self.label_col!r} "
                f"values (e.g. network {meta[self.network_col].iloc[np.flatnonzero(codes == mixed[0])[0]]!r})"
            )
        net_labels = per_network["first"].to_numpy(dtype=object)
        return codes, train_pool, test_pool, net_labels, np.unique(codes[train_pool]), np.unique(codes[test_pool])

    def counts(self, X=None, y=None, groups=None):
        """The resolved (train, test) networks per category for this data."""
        _, _, _, net_labels, net_train, net_test = self._network_pools(X, y, groups)
        return self._counts(net_labels, net_train, net_test)

    def split(self, X=None, y=None, groups=None):
        """Yield the ``(train_index, test_index)`` rows of every split.

        Parameters
        ----------
        X : AnalysisView, pandas.DataFrame or array-like of shape (n_rows, ...), optional
        y : array-like of shape (n_rows,), optional
            Ignored: the categories and the networks come from the metadata.
        groups : pandas.DataFrame of shape (n_rows, n_meta), optional
            The metadata, with ``label_col`` and ``network_col``.

        Yields
        ------
        train, test : ndarray of int
            Sorted, disjoint row indices; no network has rows in both.
        """
        codes, train_pool, test_pool, net_labels, net_train, net_test = self._network_pools(X, y, groups)
        self.n_train_, self.n_test_ = (int(n) for n in self._counts(net_labels, net_train, net_test))
        rng = check_random_state(self.random_state)
        for _ in range(self.n_splits):
            train, test = balanced_draw(net_labels, net_train, net_test, self.n_train_, self.n_test_, rng)
            yield (train_pool[np.isin(codes[train_pool], train)].astype(np.intp),
                   test_pool[np.isin(codes[test_pool], test)].astype(np.intp))


def _value_keys(meta, columns):
    """Per-row tuples of the columns' values, with nulls as None."""
    missing = [c for c in columns if c not in meta.columns]
    if missing:
        raise ValueError(f"metadata has no column(s) {missing}; columns are {list(meta.columns)}")
    parts = []
    for column in columns:
        values = meta[column].astype(object)
        parts.append(values.where(meta[column].notna(), None).tolist())
    return list(zip(*parts))


def _sort_key(key):
    return tuple((v is None, "" if v is None else v) for v in key)


class HeldOutSplit(_MetadataSplitter):
    """Leave one value out: one fold per value of a metadata column (or columns).

    Fold ``k`` tests on every row whose value equals the ``k``-th value (in
    sorted order, nulls last and treated as a value of their own) and trains
    on all other rows. With ``balance=True`` (default) each side is then made
    rule-balanced: within the train rows and within the test rows, every
    category present is subsampled to the count of the rarest one, with the
    draw of :func:`balanced_draw` (a single ``RandomState(random_state)`` for
    all folds, advanced fold by fold). When the categories are already
    balanced (as in the public data) this keeps every row.

    Like :class:`sklearn.model_selection.LeaveOneGroupOut`, it also takes the
    held-out value of every row directly as a 1-D ``groups`` array; the
    categories to balance are then ``y``.

    Parameters
    ----------
    by : str or sequence of str
        Metadata column(s) defining the held-out values.
    label_col : str
        Column whose categories are balanced.
    balance : bool
    random_state : int or numpy.random.RandomState
        Seed of the balancing draw.
    meta : pandas.DataFrame, optional
        Metadata used when ``split`` gets neither ``groups`` nor a metadata
        DataFrame or AnalysisView as ``X``.
    seed : int, optional
        Deprecated alias of ``random_state``.

    Examples
    --------
    >>> import pandas as pd
    >>> meta = pd.DataFrame({"task": ["a", "a", "b", "b", "c", "c"],
    ...                      "learning_rule": ["adam", "sgdm"] * 3})
    >>> cv = HeldOutSplit("task")
    >>> cv
    HeldOutSplit(by=('task',), label_col='learning_rule', balance=True, random_state=0, meta=None)
    >>> cv.get_n_splits(groups=meta), cv.fold_names(groups=meta)
    (3, ['a', 'b', 'c'])
    >>> [test.tolist() for _, test in cv.split(np.zeros((6, 2)), groups=meta)]
    [[0, 1], [2, 3], [4, 5]]

    The same folds from a 1-D ``groups`` array and the rules as ``y``:

    >>> [test.tolist() for _, test in cv.split(np.zeros((6, 2)), meta["learning_rule"], meta["task"])]
    [[0, 1], [2, 3], [4, 5]]
    """

    def __init__(self, by, label_col="learning_rule", balance=True, random_state=0, meta=None, seed=None):
        self.by = (by,) if isinstance(by, str) else tuple(by)
        if not self.by:
            raise ValueError("by must name at least one metadata column")
        self.label_col = label_col
        self.balance = balance
        self._set_random_state(random_state, seed)
        self.meta = meta

    def _folds(self, X, y, groups):
        """Held-out key of every row (tuples), the metadata (or None), the number of rows, whether groups is 1-D."""
        one_d = groups is not None and not isinstance(groups, (pd.DataFrame, AnalysisView))
        meta = _resolve_meta(X, None if one_d else groups, self.meta)
        if one_d:
            values = pd.Series(np.asarray(groups, dtype=object).ravel() if np.ndim(groups) <= 1 else
                               list(map(tuple, np.asarray(groups, dtype=object))))
            if X is not None and len(X) != len(values):
                raise ValueError(f"X has {len(X)} rows but groups has {len(values)}")
            if meta is not None and len(meta) != len(values):
                raise ValueError(f"groups has {len(values)} rows but the metadata has {len(meta)}")
            return [(v,) for v in values.where(values.notna(), None).tolist()], meta, len(values), True
        if meta is None:
            raise ValueError(
                f"{type(self).__name__} needs the metadata: pass it as groups (a DataFrame, or the held-out "
                "value of every row), pass an AnalysisView or its meta DataFrame as X, or meta= at construction"
            )
        return _value_keys(meta, self.by), meta, len(meta), False

    def values(self, X=None, groups=None):
        """The held-out values in fold order (scalars for one column or 1-D groups, tuples for several)."""
        keys, _, _, one_d = self._folds(X, None, groups)
        keys = sorted(set(keys), key=_sort_key)
        return [k[0] for k in keys] if len(self.by) == 1 or one_d else keys

    def fold_names(self, X=None, groups=None):
        """One label per fold: the value, or ``"col=value, col=value"`` for several columns."""
        values = self.values(X, groups)
        if values and isinstance(values[0], tuple) and len(values[0]) == len(self.by) > 1:
            return [", ".join(f"{c}={v}" for c, v in zip(self.by, key)) for key in values]
        return [str(v) for v in values]

    def get_n_splits(self, X=None, y=None, groups=None):
        """Number of folds: the number of distinct values."""
        return len(self.values(X, groups))

    def split(self, X=None, y=None, groups=None):
        """Yield ``(train_index, test_index)`` per held-out value.

        Parameters
        ----------
        X : AnalysisView, pandas.DataFrame or array-like of shape (n_rows, ...)
            The view or its metadata, or any array when the metadata comes
            as ``groups`` or ``meta=``.
        y : array-like of shape (n_rows,), optional
            Categories to balance when no metadata is available (with a 1-D
            ``groups`` and neither a metadata ``X`` nor ``meta=``).
        groups : pandas.DataFrame of shape (n_rows, n_meta) or array-like of shape (n_rows,), optional
            The metadata, or the held-out value of every row.

        Yields
        ------
        train, test : ndarray of int
        """
        keys, meta, n_rows, _ = self._folds(X, y, groups)
        values = sorted(set(keys), key=_sort_key)
        if len(values) < 2:
            raise ValueError(f"cannot hold out by {list(self.by)}: only one value {values} present")
        index = {v: i for i, v in enumerate(values)}
        codes = np.array([index[k] for k in keys], dtype=np.intp)
        labels = _labels(meta, y, self.label_col, n_rows) if self.balance else None
        rng = check_random_state(self.random_state)
        for k in range(len(values)):
            test_pool = np.flatnonzero(codes == k)
            train_pool = np.flatnonzero(codes != k)
            if not self.balance:
                yield train_pool, test_pool
                continue
            n_test = np.unique(labels[test_pool], return_counts=True)[1].min()
            n_train = np.unique(labels[train_pool], return_counts=True)[1].min()
            yield balanced_draw(labels, train_pool, test_pool, int(n_train), int(n_test), rng)


class HeldOutArchitecture(HeldOutSplit):
    """One fold per architecture (ten in the public data), rule-balanced; see :class:`HeldOutSplit`.

    Examples
    --------
    >>> from lrid_analysis.synthetic import public_meta
    >>> HeldOutArchitecture().get_n_splits(groups=public_meta())
    10
    """

    def __init__(self, label_col="learning_rule", balance=True, random_state=0, meta=None, seed=None):
        super().__init__("architecture", label_col=label_col, balance=balance, random_state=random_state,
                         meta=meta, seed=seed)


class HeldOutCurriculum(HeldOutSplit):
    """One fold per (batch size, dataset seed) pair (six in the public data; a null seed is its own value).

    Examples
    --------
    >>> from lrid_analysis.synthetic import public_meta
    >>> HeldOutCurriculum().fold_names(groups=public_meta())[:2]
    ['batch_size=128, dataset_seed=0', 'batch_size=128, dataset_seed=None']
    """

    def __init__(self, label_col="learning_rule", balance=True, random_state=0, meta=None, seed=None):
        super().__init__(("batch_size", "dataset_seed"), label_col=label_col, balance=balance,
                         random_state=random_state, meta=meta, seed=seed)


class HeldOutTask(HeldOutSplit):
    """One fold per task (four in the public data), rule-balanced; see :class:`HeldOutSplit`.

    Examples
    --------
    >>> from lrid_analysis.synthetic import public_meta
    >>> HeldOutTask().fold_names(groups=public_meta())
    ['audionet', 'cifar10', 'imagenet', 'simclr']
    """

    def __init__(self, label_col="learning_rule", balance=True, random_state=0, meta=None, seed=None):
        super().__init__("task", label_col=label_col, balance=balance, random_state=random_state, meta=meta,
                         seed=seed)


def window_transfer_pairs(parts=WINDOWS):
    """The (train window, test window) pairs of Fig. 4b, train-major.

    Parameters
    ----------
    parts : sequence of str
        Window names (default ``("early", "middle", "late")``).

    Returns
    -------
    list of (str, str)
        ``len(parts) ** 2`` pairs (9 by default), the same-window pairs
        included: ``[("early", "early"), ("early", "middle"), ...]``.
    """
    parts = tuple(parts)
    unknown = [p for p in parts if p not in WINDOWS]
    if unknown:
        raise ValueError(f"unknown window(s) {unknown}; use {WINDOWS}")
    return [(train, test) for train in parts for test in parts]
