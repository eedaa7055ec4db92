"""Evaluate estimators over conditions x splits: one tidy table, one cache, one parallel loop.

The experiments (:mod:`lrid_analysis.experiments`), the classifier benchmark
(:mod:`lrid_benchmarks.harness`), :func:`lrid_analysis.evaluate.cross_validate`
and the one-call comparison :func:`compare` all run here.

A :class:`Condition` is one estimator on one feature matrix over a list of
splits: precomputed ``(train, test)`` index pairs, or any scikit-learn CV
splitter (``KFold``, ``LeaveOneGroupOut``, lrid's
:class:`~lrid_analysis.splits.CategoryBalancedSplit` ...) called as
``cv.split(X, y, groups)``. :func:`run` fits every (condition, split) pair in
a single :class:`joblib.Parallel` loop, so workers stay busy across
conditions, and returns one row per pair. Estimators are cloned per split
and seeded by their ``random_state``, so results do not depend on
``n_jobs``.

Groups
    ``groups`` (one value per row, e.g. the network ``run_id``) go to the
    splitter and, for the training rows, to ``estimator.fit(X, y,
    groups=...)`` whenever ``fit`` has a ``groups`` parameter (a
    hyperparameter search that must keep a network's layers together).
Cache
    With a :class:`~lrid_analysis.cache.FitCache`, each finished fit is
    stored under a content key (estimator contents and code, data, split,
    library versions; see :mod:`lrid_analysis.cache`) and reused by a later
    run, which prints ``reused N cached fits``.

Result table (one row per condition and split)
    The condition's key columns, then ``split`` (numbered within the
    condition), ``fold`` (its name), ``train_accuracy``, ``test_accuracy``,
    ``train_balanced_accuracy``, ``test_balanced_accuracy``,
    ``fit_seconds``, ``predict_seconds``, ``n_train``, ``n_test``,
    ``params`` (JSON of the fitted estimator's ``best_params_``),
    ``dprime_<label>``, ``train_dprime_<label>``, ``confusion`` and
    ``train_confusion`` (JSON of the confusion matrices, rows actual),
    ``train_index`` and ``test_index`` (the split's rows, so that later work
    such as permutation importance uses the very same splits).
Several outputs of one fit
    An estimator whose ``predict`` returns shape ``(n_rows, n_outputs)``
    and whose fitted ``output_names_`` names the columns (e.g.
    :class:`~lrid_analysis.trajectories.WindowGeneralizer` with several
    test windows) is fitted once per split and scored once per output: one
    row per (condition, split, output), the output's name in the
    condition's ``output_key`` column.
"""

from __future__ import annotations

import inspect
import json
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from tqdm.auto import tqdm

from .cache import (
    FitCache,
    code_fingerprint,
    digest,
    estimator_digest,
    json_default,
    library_versions,
)
from .metrics import balanced_accuracy, confusion_matrix, dprime

__all__ = ["Condition", "RunResult", "resolve_splits", "fit_and_score", "best_params", "groups_fit_params", "run",
           "labelled_estimators", "compare", "DEFAULT_N_JOBS"]

#: Default of ``--n-jobs`` in the experiments and the benchmark harness: all cores.
DEFAULT_N_JOBS = -1


def resolve_splits(cv, X, y=None, groups=None, meta=None):
    """Materialise a splitter, or check a list of index pairs.

    Parameters
    ----------
    cv : splitter or iterable of (train_index, test_index)
        A splitter (anything with ``split``) is called as
        ``cv.split(source, y, groups)`` with ``source`` the metadata
        ``meta`` when given, else ``X``; its ``fold_names`` (lrid
        splitters) name the folds. An lrid splitter (``metadata_groups``)
        gets ``meta`` as its ``groups``.
    X : array-like, shape (n_rows, ...)
    y : array-like, shape (n_rows,), optional
    groups : array-like, shape (n_rows,), optional
    meta : pandas.DataFrame, optional
        Metadata of the rows, for splitters that read columns.

    Returns
    -------
    pairs : list of (ndarray of intp, ndarray of intp)
    names : list of str
        Fold names (``"0"``, ``"1"``, ... when the splitter has none).

    Raises
    ------
    ValueError
        For an empty list, a pair that is not two non-empty 1-D index arrays
        inside ``range(n_rows)``, or rows in both train and test.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import LeaveOneGroupOut
    >>> pairs, names = resolve_splits(LeaveOneGroupOut(), np.zeros((4, 1)), groups=[0, 0, 1, 1])
    >>> [p[1].tolist() for p in pairs], names
    ([[0, 1], [2, 3]], ['0', '1'])
    """
    n_rows = len(meta) if meta is not None else len(X)
    names = None
    if hasattr(cv, "split"):
        source = meta if meta is not None else X
        if hasattr(cv, "fold_names"):
            try:
                names = [str(n) for n in cv.fold_names(source)]
            except (TypeError, ValueError):
                names = None
        if meta is not None and getattr(cv, "metadata_groups", False):
            groups = meta  # lrid splitters read the metadata; row groups (network ids) are for fit
        cv = list(cv.split(source, y, groups))
    pairs = []
    for k, pair in enumerate(cv):
        try:
            train, test = pair
        except (TypeError, ValueError) as err:
            raise ValueError(f"split {k} is not a (train_index, test_index) pair") from err
        pairs.append((np.asarray(train, dtype=np.intp), np.asarray(test, dtype=np.intp)))
    if not pairs:
        raise ValueError("no splits to evaluate")
    for k, (train, test) in enumerate(pairs):
        for which, idx in (("train", train), ("test", test)):
            if idx.ndim != 1 or len(idx) == 0:
                raise ValueError(f"split {k}: the {which} index must be a non-empty 1-D integer array")
            if idx.min() < 0 or idx.max() >= n_rows:
                raise ValueError(f"split {k}: {which} index out of range for {n_rows} rows")
        overlap = np.intersect1d(train, test)
        if len(overlap):
            raise ValueError(f"split {k}: {len(overlap)} row(s) in both train and test, e.g. row {overlap[0]}")
    if names is None or len(names) != len(pairs):
        names = [str(k) for k in range(len(pairs))]
    return pairs, names


@dataclass
class Condition:
    """One estimator on one feature matrix over a list of splits.

    Parameters
    ----------
    key : dict
        Condition columns of the result rows (e.g. classifier, observables).
    estimator : estimator
        Unfitted; cloned for every split.
    X : ndarray, shape (n_rows, ...)
        Features, indexed along the first axis.
    y : array-like, shape (n_rows,)
    cv : splitter or list of (train_index, test_index)
        Materialised by :func:`resolve_splits` (into ``pairs``).
    groups : array-like, shape (n_rows,), optional
        Group of every row (e.g. the network ``run_id``): given to the
        splitter and to ``fit`` (see the module notes).
    fold_names : list of str, optional
        Names of the splits (default: the splitter's, else the numbers).
    X_test : ndarray, shape (n_rows, ...), optional
        Deprecated: features the test rows are scored on (default ``X``).
        Train on one version of the rows and test on another with a
        meta-estimator instead, e.g.
        :class:`~lrid_analysis.trajectories.WindowGeneralizer` for
        trajectory windows.
    labels : list, optional
        Class order of the confusion matrices (default: sorted ``y``).
    meta : pandas.DataFrame, optional
        Row metadata for splitters that read columns.
    extra : callable, optional
        ``extra(estimator, X, X_test, y, train, test, split)`` run in the
        worker after the fit; returns a DataFrame (e.g. importances). Must
        be picklable (a module-level function or a ``functools.partial``).
    output_key : str, optional
        Column that names the output of an estimator predicting several
        (see the module notes); required for such an estimator.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> c = Condition({"classifier": "dummy"}, DummyClassifier(), np.zeros((6, 2)), list("aabbab"),
    ...               cv=[([0, 1, 2, 3], [4, 5])])
    >>> len(c.pairs), c.fold_names, c.labels
    (1, ['0'], ['a', 'b'])
    """

    key: dict
    estimator: object
    X: np.ndarray
    y: np.ndarray
    cv: object = None
    groups: object = None
    fold_names: list | None = None
    X_test: np.ndarray | None = None
    labels: list | None = None
    meta: pd.DataFrame | None = None
    extra: object = None
    output_key: str | None = None
    pairs: list = field(init=False, repr=False)

    def __post_init__(self):
        self.y = np.asarray(self.y, dtype=object)
        if len(self.X) != len(self.y):
            raise ValueError(f"X has {len(self.X)} rows but y has {len(self.y)}")
        if self.X_test is not None:
            warnings.warn("Condition(X_test=...) is deprecated and will be removed: wrap the estimator in a "
                          "meta-estimator that picks the test features, such as "
                          "lrid_analysis.trajectories.WindowGeneralizer for trajectory windows",
                          FutureWarning, stacklevel=3)
        if self.X_test is not None and len(self.X_test) != len(self.X):
            raise ValueError(f"X_test has {len(self.X_test)} rows but X has {len(self.X)}; "
                             "they must describe the same rows")
        if self.groups is not None:
            self.groups = np.asarray(self.groups)
            if len(self.groups) != len(self.y):
                raise ValueError(f"groups has {len(self.groups)} entries for {len(self.y)} rows")
        self.labels = list(np.unique(self.y)) if self.labels is None else list(self.labels)
        unknown = sorted(set(map(str, set(self.y.tolist()) - set(self.labels))))
        if unknown:
            raise ValueError(f"y holds label(s) {unknown} missing from labels={self.labels}")
        if self.cv is None:
            raise ValueError("a condition needs cv: a splitter or (train_index, test_index) pairs")
        if self.output_key is not None and self.output_key in self.key:
            raise ValueError(f"output_key {self.output_key!r} is also a key column of the condition")
        self.pairs, names = resolve_splits(self.cv, self.X, self.y, self.groups, self.meta)
        if self.fold_names is None:
            self.fold_names = names
        self.fold_names = [str(n) for n in self.fold_names]
        if len(self.fold_names) != len(self.pairs):
            raise ValueError(f"{len(self.fold_names)} fold names for {len(self.pairs)} splits")

    def digest(self):
        """Content key of the condition (estimator, data, class order, extra; not the splits)."""
        extra = None
        if self.extra is not None:
            extra = (joblib_hash_callable(self.extra), code_fingerprint(self.extra))
        outputs = () if self.output_key is None else (self.output_key,)  # keeps older digests
        return digest(estimator_digest(self.estimator), self.X, self.X_test, self.y, self.groups, self.labels,
                      extra, *outputs, library_versions())

    def split_key(self, condition_digest, k):
        """Content key of split ``k`` of the condition."""
        train, test = self.pairs[k]
        return digest(condition_digest, train, test, self.fold_names[k])


def joblib_hash_callable(fn):
    """A hash of a callable by name and (for a partial) its bound arguments."""
    func = getattr(fn, "func", fn)
    name = f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', type(func).__name__)}"
    return digest(name, getattr(fn, "args", ()), getattr(fn, "keywords", None))


def groups_fit_params(estimator, groups):
    """The ``fit`` keyword arguments that hand ``groups`` to the estimator, or to the last step of a pipeline.

    Parameters
    ----------
    estimator : estimator
    groups : array-like, shape (n_rows,)

    Returns
    -------
    dict
        ``{"groups": groups}`` when ``fit`` has a ``groups`` parameter,
        ``{"<step>__groups": groups}`` for a :class:`~sklearn.pipeline.Pipeline`
        whose last step takes them (e.g. a selection behind
        :class:`~lrid_analysis.trajectories.Flatten`), else empty.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from lrid_analysis.classifiers import OOBForestSelection
    >>> list(groups_fit_params(make_pipeline(StandardScaler(), OOBForestSelection()), [0, 1]))
    ['oobforestselection__groups']
    """
    if isinstance(estimator, Pipeline):
        name, last = estimator.steps[-1]
        return {f"{name}__{k}": v for k, v in groups_fit_params(last, groups).items()}
    try:
        accepts = "groups" in inspect.signature(estimator.fit).parameters
    except (TypeError, ValueError):
        accepts = False
    return {"groups": groups} if accepts else {}


def fit_and_score(estimator, X, X_test, y, train, test, labels, groups=None, keep_estimator=False,
                  keep_predictions=False):
    """Fit a clone of ``estimator`` on the train rows and score train and test rows.

    Parameters
    ----------
    estimator : estimator
    X : ndarray, shape (n_rows, ...)
        Features (a 3-D trajectory array is indexed along its first axis too).
    X_test : ndarray, shape (n_rows, ...) or None
        Features the test rows are scored on; None (preferred): ``X``. (The
        positional slot stays for compatibility; see :class:`Condition`.)
    y : ndarray, shape (n_rows,)
    train, test : ndarray of int
    labels : list
        Class order of the confusion matrices.
    groups : ndarray, shape (n_rows,), optional
        Passed as ``groups=groups[train]`` to ``fit`` when it takes ``groups``.
    keep_estimator, keep_predictions : bool

    Returns
    -------
    dict
        ``train_confusion``, ``confusion`` (ndarray, shape (n_labels,
        n_labels)), ``train_accuracy``, ``test_accuracy``, ``fit_seconds``,
        ``predict_seconds``, ``params`` (JSON of ``best_params_``), and
        ``estimator`` / ``train_pred``, ``test_pred`` when asked. For an
        estimator with several outputs (module notes) the four scores sit
        in ``outputs``, one dict per output with its name under ``output``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> X = np.array([[0.0], [0.1], [1.0], [1.1], [0.05], [1.05]])
    >>> y = np.array(list("aabbab"), dtype=object)
    >>> out = fit_and_score(KNeighborsClassifier(1), X, None, y, np.arange(4), np.arange(4, 6), ["a", "b"])
    >>> out["test_accuracy"], out["confusion"].tolist()
    (1.0, [[1, 0], [0, 1]])
    """
    estimator = clone(estimator)
    fit_params = {} if groups is None else groups_fit_params(estimator, np.asarray(groups)[train])
    start = time.perf_counter()
    estimator.fit(X[train], y[train], **fit_params)
    fit_seconds = time.perf_counter() - start
    train_pred = np.asarray(estimator.predict(X[train]), dtype=object)
    start = time.perf_counter()
    test_pred = np.asarray(estimator.predict((X if X_test is None else X_test)[test]), dtype=object)
    predict_seconds = time.perf_counter() - start
    out = {"fit_seconds": fit_seconds, "predict_seconds": predict_seconds,
           "params": json.dumps(best_params(estimator), sort_keys=True, default=json_default)}
    if test_pred.ndim == 2:
        names = _output_names(estimator, test_pred.shape[1])
        out["outputs"] = [{"output": name, **_metrics(y[train], train_pred[:, j], y[test], test_pred[:, j], labels)}
                          for j, name in enumerate(names)]
    else:
        out.update(_metrics(y[train], train_pred, y[test], test_pred, labels))
    if keep_estimator:
        out["estimator"] = estimator
    if keep_predictions:
        out["train_pred"], out["test_pred"] = train_pred, test_pred
    return out


def best_params(estimator):
    """The ``best_params_`` of a fitted estimator, or of the last step of a fitted pipeline; None without.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn.linear_model import LogisticRegression
    >>> best_params(make_pipeline(StandardScaler(), LogisticRegression())) is None
    True
    """
    while isinstance(estimator, Pipeline):
        estimator = estimator[-1]
    return getattr(estimator, "best_params_", None)


def _metrics(y_train, train_pred, y_test, test_pred, labels):
    return {
        "train_confusion": confusion_matrix(y_train, train_pred, labels),
        "confusion": confusion_matrix(y_test, test_pred, labels),
        "train_accuracy": float(np.mean(train_pred == y_train)),
        "test_accuracy": float(np.mean(test_pred == y_test)),
    }


def _output_names(estimator, n_outputs):
    names = getattr(estimator, "output_names_", None)
    if names is None or len(names) != n_outputs:
        raise ValueError(f"{type(estimator).__name__}.predict returned {n_outputs} columns of predictions; an "
                         "estimator with several outputs must name them in output_names_")
    return [str(name) for name in names]


def _score_row(out, labels, fold, train, test):
    row = {
        "fold": fold,
        "train_accuracy": out["train_accuracy"],
        "test_accuracy": out["test_accuracy"],
        "train_balanced_accuracy": balanced_accuracy(out["train_confusion"]),
        "test_balanced_accuracy": balanced_accuracy(out["confusion"]),
        "fit_seconds": out["fit_seconds"],
        "predict_seconds": out["predict_seconds"],
        "n_train": len(train),
        "n_test": len(test),
        "params": out["params"],
    }
    row.update({f"dprime_{label}": float(v) for label, v in zip(labels, dprime(out["confusion"]))})
    row.update({f"train_dprime_{label}": float(v) for label, v in zip(labels, dprime(out["train_confusion"]))})
    row["confusion"] = json.dumps(np.asarray(out["confusion"]).tolist())
    row["train_confusion"] = json.dumps(np.asarray(out["train_confusion"]).tolist())
    row["train_index"] = np.asarray(train).tolist()
    row["test_index"] = np.asarray(test).tolist()
    return row


def _failed(errors, err):
    if errors == "raise":
        raise err
    return None, None, f"{type(err).__name__}: {err}"


def _task(condition, k, keep_estimator, keep_predictions, errors):
    """One (condition, split) fit in a worker: the score row, the extra frame, and what was kept."""
    c = condition
    train, test = c.pairs[k]
    X_test = c.X if c.X_test is None else c.X_test
    try:
        out = fit_and_score(c.estimator, c.X, X_test, c.y, train, test, c.labels, groups=c.groups,
                            keep_estimator=keep_estimator or c.extra is not None,
                            keep_predictions=keep_predictions)
        frame = None
        if c.extra is not None:
            frame = c.extra(out["estimator"], c.X, X_test, c.y, train, test, k)
    except Exception as err:
        return _failed(errors, err)
    if "outputs" in out:
        if c.output_key is None:
            return _failed(errors, ValueError(
                f"{type(c.estimator).__name__} predicts {len(out['outputs'])} outputs; give the condition an "
                "output_key column to name them"))
        row = [{c.output_key: o["output"], **_score_row({**out, **o}, c.labels, c.fold_names[k], train, test)}
               for o in out["outputs"]]
    else:
        row = _score_row(out, c.labels, c.fold_names[k], train, test)
    kept = {name: out[name] for name in ("estimator", "train_pred", "test_pred") if name in out}
    if not keep_estimator:
        kept.pop("estimator", None)
    return row, frame, kept


@dataclass
class RunResult:
    """What :func:`run` returns.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (condition, split) (columns in the module notes), in the
        order of the conditions and their splits.
    extras : pandas.DataFrame or None
        The conditions' ``extra`` frames with their key columns and ``split``.
    estimators : list of list or None
        ``return_estimators=True``: the fitted estimators per condition and
        split (None for a fit read from the cache).
    predictions : pandas.DataFrame or None
        ``return_predictions=True``: one row per scored row (``split``,
        ``set``, ``index``, ``y_true``, ``y_pred``) with the key columns.
    n_fitted, n_reused : int
        Fits run now, and read from the cache.
    keys : list of dict
        The conditions' keys, in order (see :meth:`splits`, :meth:`fitted`).
    failures : list of dict
        With ``errors="skip"``: the fits that raised (their rows are left
        out), as the condition's key plus ``split``, ``fold`` and ``error``
        (``"ExceptionType: message"``).
    """

    table: pd.DataFrame
    extras: pd.DataFrame | None = None
    estimators: list | None = None
    predictions: pd.DataFrame | None = None
    n_fitted: int = 0
    n_reused: int = 0
    failures: list = field(default_factory=list)
    keys: list = field(default_factory=list)

    def _index(self, key):
        matches = [i for i, k in enumerate(self.keys) if all(k.get(c) == v for c, v in key.items())]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} conditions match {key}; conditions: {self.keys}")
        return matches[0]

    def splits(self, **key):
        """The ``(train, test)`` index pairs of the one condition matching ``key`` (its column values).

        Returns
        -------
        list of (ndarray, ndarray)
        """
        self._index(key)
        rows = self.table
        for column, value in key.items():
            rows = rows[rows[column] == value]
        rows = rows.drop_duplicates(subset="split")  # one row per output of a multi-output fit
        return [(np.asarray(tr, dtype=np.intp), np.asarray(te, dtype=np.intp))
                for tr, te in zip(rows["train_index"], rows["test_index"])]

    def fitted(self, **key):
        """The fitted estimators (one per split) of the one condition matching ``key``.

        Needs ``return_estimators=True``.
        """
        if self.estimators is None:
            raise ValueError("no fitted estimators kept; run with return_estimators=True")
        return self.estimators[self._index(key)]


def _output_rows(row):
    """The result rows of one fit: a list for an estimator with several outputs, else the one row."""
    return row if isinstance(row, list) else [row]


def _with_key(frame, key):
    frame = frame.copy()
    for position, (column, value) in enumerate(key.items()):
        if column in frame.columns:
            frame = frame.drop(columns=column)
        frame.insert(position, column, [value] * len(frame))
    return frame


def run(conditions, n_jobs=1, cache=None, progress=True, desc="fits", return_estimators=False,
        return_predictions=False, errors="raise", verbose=None):
    """Fit and score every (condition, split) pair in one parallel loop.

    Parameters
    ----------
    conditions : list of Condition
    n_jobs : int or None
        joblib workers over all (condition, split) fits (-1: all cores;
        None: the active joblib backend's default, e.g. inside
        :func:`lrid_analysis.backends.parallel_backend`).
    cache : FitCache, str or Path, optional
        Finished fits to reuse and to fill (a folder is wrapped in a
        :class:`~lrid_analysis.cache.FitCache`). Not read when estimators or
        predictions are asked for.
    progress : bool
        Show a tqdm bar over the fits.
    desc : str
        Label of the bar.
    return_estimators, return_predictions : bool
        Keep the fitted estimators / every prediction.
    errors : {"raise", "skip"}
        What a fit that raises does: stop the run, or be recorded in
        ``failures`` and left out.
    verbose : bool, optional
        Print ``reused N cached fits`` (default: ``progress``).

    Returns
    -------
    RunResult
        One table for all conditions; ``n_reused`` fits came from the cache.

    Examples
    --------
    Two well separated classes, five stratified folds:

    >>> import numpy as np
    >>> from sklearn.model_selection import StratifiedKFold
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(["a", "b"], 10)
    >>> X = rng.normal(size=(20, 2)) + 3 * (y == "b")[:, None]
    >>> c = Condition({"classifier": "knn"}, KNeighborsClassifier(3), X, y, cv=StratifiedKFold(5))
    >>> result = run([c], progress=False)
    >>> result.table[["classifier", "split", "test_accuracy"]].shape
    (5, 3)
    >>> float(result.table["test_accuracy"].mean())
    1.0
    """
    if errors not in ("raise", "skip"):
        raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")
    if n_jobs is not None and int(n_jobs) == 0:
        raise ValueError("n_jobs must not be 0 (use 1, a positive count, -1 for all cores, or None for the "
                         "active joblib backend's default)")
    conditions = list(conditions)
    if cache is not None and not isinstance(cache, FitCache):
        cache = FitCache(cache)
    if return_estimators or return_predictions:
        cache = None
    rows = [[None] * len(c.pairs) for c in conditions]
    frames = [[None] * len(c.pairs) for c in conditions]
    kept = [[None] * len(c.pairs) for c in conditions]
    keys = [[None] * len(c.pairs) for c in conditions]
    todo, n_reused = [], 0
    for i, c in enumerate(conditions):
        base = c.digest() if cache is not None else None
        for k in range(len(c.pairs)):
            if cache is not None:
                keys[i][k] = c.split_key(base, k)
                hit = cache.load(keys[i][k], c.key)
                if hit is not None and (hit[1] is not None or c.extra is None):
                    rows[i][k], frames[i][k] = hit
                    n_reused += 1
                    continue
            todo.append((i, k))
    if n_reused and (progress if verbose is None else verbose):
        print(f"reused {n_reused} cached fits from {cache.folder}", flush=True)
    failures = []
    jobs = (delayed(_task)(conditions[i], k, return_estimators, return_predictions, errors) for i, k in todo)
    with tqdm(total=len(todo), desc=desc, disable=not progress or not todo, unit="fit") as bar:
        outputs = Parallel(n_jobs=n_jobs, return_as="generator")(jobs) if todo else []
        for (i, k), (row, frame, extra) in zip(todo, outputs):
            bar.update()
            if row is None:
                failures.append({**conditions[i].key, "split": k, "fold": conditions[i].fold_names[k],
                                 "error": extra})
                continue
            rows[i][k], frames[i][k], kept[i][k] = row, frame, extra
            if cache is not None:
                cache.save(keys[i][k], conditions[i].key, row, frame)
    tables, extras, predictions = [], [], []
    for i, c in enumerate(conditions):
        done = [k for k in range(len(c.pairs)) if rows[i][k] is not None]
        if not done:
            continue
        table = pd.DataFrame([{"split": k, **row} for k in done for row in _output_rows(rows[i][k])])
        tables.append(_with_key(table, c.key))
        parts = [frames[i][k].assign(split=k) for k in done if frames[i][k] is not None]
        if parts:
            extras.append(_with_key(pd.concat(parts, ignore_index=True), c.key))
        if return_predictions:
            for k in done:
                train, test = c.pairs[k]
                outputs = [row.get(c.output_key) for row in _output_rows(rows[i][k])]
                for which, idx, name in (("train", train, "train_pred"), ("test", test, "test_pred")):
                    pred = np.asarray(kept[i][k][name], dtype=object).reshape(len(idx), len(outputs))
                    for j, output in enumerate(outputs):
                        frame = pd.DataFrame({"split": k, "fold": c.fold_names[k], "set": which, "index": idx,
                                              "y_true": c.y[idx], "y_pred": pred[:, j]})
                        if output is not None:
                            frame.insert(0, c.output_key, output)
                        predictions.append(_with_key(frame, c.key))
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    estimators = None
    if return_estimators:
        estimators = [[(kept[i][k] or {}).get("estimator") for k in range(len(c.pairs))]
                      for i, c in enumerate(conditions)]
    return RunResult(table=table, extras=pd.concat(extras, ignore_index=True) if extras else None,
                     estimators=estimators,
                     predictions=pd.concat(predictions, ignore_index=True) if predictions else None,
                     n_fitted=len(todo) - len(failures), n_reused=n_reused, failures=failures,
                     keys=[dict(c.key) for c in conditions])


def labelled_estimators(estimators, name="classifier"):
    """``{label: estimator}`` from a dict, (label, estimator) pairs, or one estimator.

    Parameters
    ----------
    estimators : estimator, dict or sequence of (str, estimator)
        A bare estimator is labelled by its class name; so are the items of
        a list of estimators, which must then all be of different classes.
    name : str
        What the estimators are, for messages.

    Returns
    -------
    dict of str to estimator

    Raises
    ------
    ValueError
        For two estimators under one label (the message says how to name
        them).

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn.linear_model import LogisticRegression
    >>> list(labelled_estimators([("a", make_pipeline(LogisticRegression())),
    ...                           ("b", make_pipeline(StandardScaler(), LogisticRegression()))]))
    ['a', 'b']
    >>> labelled_estimators([make_pipeline(LogisticRegression()), make_pipeline(LogisticRegression())])
    Traceback (most recent call last):
    ...
    ValueError: two classifiers are labelled 'Pipeline'; pass a dict {label: estimator} or (label, estimator) pairs
    """
    if isinstance(estimators, dict):
        return {str(label): est for label, est in estimators.items()}
    items = [estimators] if hasattr(estimators, "fit") or isinstance(estimators, type) else list(estimators)
    out = {}
    for item in items:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            label, est = item
        else:
            est = item
            label = est.__name__ if isinstance(est, type) else type(est).__name__
        if label in out:
            raise ValueError(f"two {name}s are labelled {label!r}; pass a dict {{label: estimator}} or "
                             "(label, estimator) pairs")
        out[label] = est
    return out


def _named(items, what):
    if isinstance(items, dict):
        return {str(k): v for k, v in items.items()}
    items = [items] if hasattr(items, "split") or not isinstance(items, (list, tuple)) else list(items)
    out = {}
    for item in items:
        label, value = item if (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)) \
            else (repr(item) if hasattr(item, "split") else str(item), item)
        if label in out:
            raise ValueError(f"two {what} are labelled {label!r}; pass a dict {{label: {what[:-1]}}}")
        out[label] = value
    return out


def compare(estimators, data, cv, observables=None, groups="run_id", n_jobs=1, cache=None, progress=False,
            return_estimators=False):
    """Several estimators x several splitters (x several datasets) in one call: one long table.

    Every estimator is fitted and scored on the flat features
    (:func:`lrid_analysis.features.flatten`) of every dataset, over every
    splitter's splits; the splits are drawn once per (dataset, splitter) and
    shared by all estimators, and their rows are kept in the table
    (``train_index``, ``test_index``).

    Parameters
    ----------
    estimators : estimator, dict or sequence of (label, estimator)
        See :func:`labelled_estimators`.
    data : AnalysisView or dict of str to AnalysisView
        One or several named datasets.
    cv : splitter, list of (train, test) pairs, or dict of str to either
        lrid splitters read the view's metadata; scikit-learn splitters get
        ``split(X, y, groups)``.
    observables : str or list of str, optional
        Observable set of the features (see
        :func:`lrid_analysis.observables.resolve_observables`); default
        every statistic of the view.
    groups : str or None
        Metadata column giving every row's group (default the network
        ``run_id``), passed to the splitters and to ``fit``.
    n_jobs : int
    cache : FitCache, str or Path, optional
        Reuse finished fits (see :func:`run`).
    progress : bool
    return_estimators : bool
        Keep the fitted estimators (``result.estimators``, in the table's
        condition order; disables the cache).

    Returns
    -------
    RunResult
        ``table`` with the columns ``dataset``, ``cv``, ``classifier`` then
        those of :func:`run`.

    Examples
    --------
    >>> from sklearn.model_selection import GroupKFold
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from lrid_analysis.dataset import load_view
    >>> view = load_view("embedded", "grad", filters={"task": "digits"})
    >>> result = compare({"tree": DecisionTreeClassifier(max_depth=3, random_state=0)}, view, GroupKFold(2))
    >>> sorted(result.table["split"]), list(result.table.columns[:3])
    ([0, 1], ['dataset', 'cv', 'classifier'])
    """
    from .features import flatten, select

    models = labelled_estimators(estimators)
    datasets = data if isinstance(data, dict) else {"data": data}
    splitters = _named(cv, "splitters") if (isinstance(cv, dict) or hasattr(cv, "split")) \
        else {"splits": cv}
    conditions = []
    for dname, view in datasets.items():
        sub = select(view, list(view.observables) if observables is None else observables)
        X, y = flatten(sub, check=False), np.asarray(sub.y, dtype=object)
        row_groups = None if groups is None else view.meta[groups].to_numpy()
        for cname, splitter in splitters.items():
            pairs, names = resolve_splits(splitter, X, y, row_groups, meta=view.meta)
            for label, estimator in models.items():
                conditions.append(Condition({"dataset": dname, "cv": cname, "classifier": label}, estimator, X, y,
                                            cv=pairs, groups=row_groups, fold_names=names))
    return run(conditions, n_jobs=n_jobs, cache=cache, progress=progress, return_estimators=return_estimators)
