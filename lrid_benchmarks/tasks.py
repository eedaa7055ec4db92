"""Benchmark tasks: fixed data, fixed splits, one metric.

A task picks trajectories of the analysis view (a measurement condition,
optionally some learning rules), an observable set, a trajectory operation
and a splitter. Its rows, splits and sampled checkpoints are drawn once per
(data digest, task, number of splits, seed) and stored in an ``.npz`` file
(:class:`SplitStore`), so every classifier, in this run or a later one, sees
exactly the same rows. Every classifier is scored by test accuracy (and
balanced accuracy) on the flat feature layout of
:func:`lrid_analysis.features.flatten`.

Tasks (:data:`TASKS`)
    ``separation_weight``, ``separation_act``, ``separation_grad``, ``separation_all``
        Category-balanced 75%/25% splits (paper Fig. 2a) on one observable
        set: the admissible weight (13), activation (8), gradient (3) or all
        24 statistics.
    ``heldout_architecture``, ``heldout_curriculum``, ``heldout_task``
        Train on all values but one, test on the held-out one (Fig. 2b); all
        24 statistics; one fold per value, whatever ``n_splits``.
    ``subsample_4x5``
        Four checkpoints five apart from a random start per trajectory
        (Fig. 4a), all statistics, category-balanced splits.
    ``fa_ia_noise``
        Feedback vs Information Alignment under measurement limits (Fig. 5):
        the smallest unit fraction in the data and the middle of its
        positive noise levels (the upper one of two), all statistics,
        category-balanced splits. Skipped, with a note, when the data has no
        condition besides full access (the public data has none).

Measurement conditions
    All tasks except ``fa_ia_noise`` use the full-access trajectories
    (``unit_fraction = 1``, ``noise_std = 0``). Within a condition only the
    smallest ``obs_seed`` is used, so one network layer never appears twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from lrid_analysis import features, splits
from lrid_analysis.atomic import write_atomic
from lrid_analysis.cache import digest
from lrid_analysis.dataset import AnalysisView

__all__ = ["BenchmarkTask", "TASKS", "TaskSkipped", "PreparedTask", "SplitStore", "list_tasks", "get_tasks",
           "data_digest", "select_condition", "prepare_task"]

_SCHEMES = ("balanced", "architecture", "curriculum", "task")
_HELDOUT = {"architecture": splits.HeldOutArchitecture, "curriculum": splits.HeldOutCurriculum,
            "task": splits.HeldOutTask}


@dataclass(frozen=True)
class BenchmarkTask:
    """Definition of one benchmark task.

    Attributes
    ----------
    name : str
    description : str
    observables : str
        Observable set (``weight``, ``act``, ``grad``, ``all``).
    scheme : {"balanced", "architecture", "curriculum", "task"}
        Category-balanced splits, or leave one architecture / curriculum /
        task out.
    rules : tuple of str or None
        Learning rules kept (None: all).
    condition : {"full", "noisy"}
        Full access, or the noisy condition chosen by :func:`select_condition`.
    subsample : tuple (n_samples, period) or None
        Trajectory subsampling (:func:`lrid_analysis.features.subsample_starts`).
    """

    name: str
    description: str
    observables: str = "all"
    scheme: str = "balanced"
    rules: tuple | None = None
    condition: str = "full"
    subsample: tuple | None = None

    def __post_init__(self):
        if self.scheme not in _SCHEMES:
            raise ValueError(f"task {self.name!r}: scheme must be one of {_SCHEMES}, got {self.scheme!r}")
        if self.condition not in ("full", "noisy"):
            raise ValueError(f"task {self.name!r}: condition must be 'full' or 'noisy', got {self.condition!r}")

    @property
    def digest(self):
        """Short hash of the definition (changes when the task changes)."""
        text = json.dumps(asdict(self), sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    def uses_n_splits(self):
        """Whether the number of splits is chosen (random splits) or given by the data (held-out folds)."""
        return self.scheme == "balanced"


TASKS = {t.name: t for t in (
    BenchmarkTask("separation_weight", "category-balanced splits, 13 admissible weight statistics",
                  observables="weight"),
    BenchmarkTask("separation_act", "category-balanced splits, 8 admissible activation statistics",
                  observables="act"),
    BenchmarkTask("separation_grad", "category-balanced splits, 3 gradient statistics", observables="grad"),
    BenchmarkTask("separation_all", "category-balanced splits, all 24 admissible statistics"),
    BenchmarkTask("heldout_architecture", "leave one architecture out (one fold per architecture), all statistics",
                  scheme="architecture"),
    BenchmarkTask("heldout_curriculum", "leave one (batch size, dataset seed) out, all statistics",
                  scheme="curriculum"),
    BenchmarkTask("heldout_task", "leave one training task out, all statistics", scheme="task"),
    BenchmarkTask("subsample_4x5", "4 checkpoints 5 apart from a random start per trajectory, all statistics",
                  subsample=(4, 5)),
    BenchmarkTask("fa_ia_noise", "feedback vs information alignment at the smallest unit fraction and a middle "
                  "noise level, all statistics", rules=("feedback", "information"), condition="noisy"),
)}


class TaskSkipped(Exception):
    """The data cannot support a task; the message says why (printed as a note)."""


def list_tasks():
    """Task names and descriptions, in benchmark order.

    Returns
    -------
    dict of str to str
    """
    return {name: task.description for name, task in TASKS.items()}


def get_tasks(names=None):
    """Task definitions by name (all when None), in benchmark order.

    Raises
    ------
    ValueError
        For an unknown name, listing the tasks.
    """
    if names is None:
        return list(TASKS.values())
    wanted = []
    for name in names:
        for part in str(name).split(","):
            part = part.strip()
            if not part:
                continue
            if part not in TASKS:
                raise ValueError(f"unknown task {part!r}; tasks: {', '.join(TASKS)}")
            if part not in wanted:
                wanted.append(part)
    if not wanted:
        raise ValueError(f"no task named; tasks: {', '.join(TASKS)}")
    return [TASKS[name] for name in TASKS if name in wanted]


def data_digest(view):
    """A short, stable hash of an analysis view's contents.

    Covers the observable names, ``X``, the layer one-hot and every metadata
    column (names and values as text).

    Parameters
    ----------
    view : AnalysisView

    Returns
    -------
    str
        16 hexadecimal characters.
    """
    meta = {column: ["<null>" if pd.isna(v) else str(v) for v in view.meta[column].astype(object).tolist()]
            for column in sorted(view.meta.columns)}
    return digest(list(view.observables), np.ascontiguousarray(view.X, dtype=np.float32),
                  np.ascontiguousarray(view.layer_onehot, dtype=np.float32), meta)[:16]


def _conditions(meta):
    for column in ("unit_fraction", "noise_std"):
        if column not in meta.columns:
            return None
    return meta[["unit_fraction", "noise_std"]].astype(float)


def select_condition(meta, condition):
    """Rows of one measurement condition.

    Parameters
    ----------
    meta : pandas.DataFrame
        The view's metadata.
    condition : {"full", "noisy"}
        ``full``: ``unit_fraction = 1`` and ``noise_std = 0``. ``noisy``: the
        smallest unit fraction among the conditions other than full access,
        at the middle of its positive noise levels (``levels[len // 2]``;
        noise 0 when it has none).

    Returns
    -------
    mask : ndarray of bool, shape (n_trajectories,)
        Only the smallest ``obs_seed`` of the condition is kept.
    description : dict
        ``unit_fraction``, ``noise_std`` and ``obs_seed`` of the condition.

    Raises
    ------
    TaskSkipped
        When the data has no such condition.
    """
    grid = _conditions(meta)
    if grid is None:
        if condition == "full":
            return np.ones(len(meta), dtype=bool), {"unit_fraction": 1.0, "noise_std": 0.0, "obs_seed": None}
        raise TaskSkipped("the data has no unit_fraction / noise_std columns, so no noisy condition")
    full = (grid["unit_fraction"] == 1.0) & (grid["noise_std"] == 0.0)
    if condition == "full":
        mask = full.to_numpy()
        if not mask.any():
            raise TaskSkipped("the data has no full-access trajectories (unit_fraction = 1, noise_std = 0)")
        fraction, noise = 1.0, 0.0
    else:
        noisy = grid.loc[~full]
        if noisy.empty:
            raise TaskSkipped("the data has no measurement-noise grid (every trajectory has full access: "
                              "unit_fraction = 1, noise_std = 0)")
        fraction = float(noisy["unit_fraction"].min())
        levels = np.sort(noisy.loc[noisy["unit_fraction"] == fraction, "noise_std"].unique())
        positive = levels[levels > 0]
        pool = positive if len(positive) else levels
        noise = float(pool[len(pool) // 2])
        mask = ((grid["unit_fraction"] == fraction) & (grid["noise_std"] == noise)).to_numpy()
    obs_seed = None
    if "obs_seed" in meta.columns:
        seeds = meta.loc[mask, "obs_seed"]
        if seeds.notna().any():
            obs_seed = int(seeds.min())
            mask = mask & (meta["obs_seed"] == obs_seed).fillna(False).to_numpy(dtype=bool)
    return mask, {"unit_fraction": fraction, "noise_std": noise, "obs_seed": obs_seed}


def _digest_arrays(*arrays):
    return digest(*arrays)[:16]


@dataclass
class PreparedTask:
    """A task's fixed rows and splits on one dataset.

    Attributes
    ----------
    task : BenchmarkTask
    data_digest : str
    rows : ndarray of int, shape (n_rows,)
        Trajectories of the view the task uses.
    splits : list of (ndarray, ndarray)
        ``(train, test)`` positions into ``rows``.
    fold_names : list of str
    split_digests : list of str
        Hash of each split's rows (and sampled checkpoints): the same digest
        means the same training and test data.
    checkpoints : ndarray of int, shape (n_rows, n_samples), or None
        Checkpoints kept per row (trajectory subsampling).
    condition : dict
        The measurement condition used.
    labels : list of str
        Learning rules present, sorted.
    n_checkpoints : int
        Checkpoints per trajectory in the features.
    path : Path or None
        The ``.npz`` file holding the splits.
    """

    task: BenchmarkTask
    data_digest: str
    rows: np.ndarray
    splits: list
    fold_names: list
    split_digests: list
    checkpoints: np.ndarray | None
    condition: dict
    labels: list
    n_checkpoints: int
    path: Path | None = None

    @property
    def n_splits(self):
        return len(self.splits)

    @property
    def chance(self):
        """Chance accuracy on balanced test sets: 1 / number of rules."""
        return 1.0 / len(self.labels)

    def view(self, view):
        """The task's trajectories of ``view``: rows, observables and checkpoints applied."""
        sub = view.subset(self.rows).select_observables(self.task.observables)
        if self.checkpoints is not None:
            index = (np.arange(len(self.rows))[:, None], self.checkpoints)
            sub = replace(sub, X=sub.X[index], epochs=sub.epochs[index])
        return sub

    def features(self, view):
        """Trajectory features and labels.

        Returns
        -------
        X : ndarray, shape (n_rows, n_checkpoints, n_observables + 3)
            :func:`lrid_analysis.features.trajectories`; a classifier that
            takes flat features gets them through
            :func:`lrid_analysis.trajectories.for_trajectories`.
        y : ndarray of str, shape (n_rows,)
        """
        sub = self.view(view)
        return features.trajectories(sub), np.asarray(sub.y, dtype=object)


class SplitStore:
    """Splits on disk: ``<root>/<data digest>/<task>-<definition digest>[-n<N>]-seed<S>.npz``.

    Parameters
    ----------
    root : str or Path
    """

    def __init__(self, root):
        self.root = Path(root)

    def path(self, task, digest, n_splits, seed):
        """File of a task's splits."""
        count = f"-n{int(n_splits)}" if task.uses_n_splits() else ""
        return self.root / digest / f"{task.name}-{task.digest}{count}-seed{int(seed)}.npz"

    def save(self, prepared, n_splits, seed):
        """Write a prepared task's rows and splits atomically; return the path."""
        path = self.path(prepared.task, prepared.data_digest, n_splits, seed)
        arrays = {"rows": prepared.rows, "fold_names": np.array(prepared.fold_names, dtype=str),
                  "condition": np.array(json.dumps(prepared.condition)), "labels": np.array(prepared.labels, dtype=str),
                  "n_checkpoints": np.array(prepared.n_checkpoints)}
        if prepared.checkpoints is not None:
            arrays["checkpoints"] = prepared.checkpoints
        for k, (train, test) in enumerate(prepared.splits):
            arrays[f"train_{k}"], arrays[f"test_{k}"] = train, test
        def write(tmp):
            with open(tmp, "wb") as handle:
                np.savez(handle, **arrays)

        write_atomic(path, write)
        prepared.path = path
        return path

    def load(self, task, digest, n_splits, seed, n_view_rows):
        """The stored :class:`PreparedTask`, or None when absent or unusable."""
        path = self.path(task, digest, n_splits, seed)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                rows = data["rows"].astype(np.intp)
                names = [str(n) for n in data["fold_names"]]
                pairs = [(data[f"train_{k}"].astype(np.intp), data[f"test_{k}"].astype(np.intp))
                         for k in range(len(names))]
                checkpoints = data["checkpoints"].astype(np.intp) if "checkpoints" in data.files else None
                condition = json.loads(str(data["condition"]))
                labels = [str(v) for v in data["labels"]]
                n_checkpoints = int(data["n_checkpoints"])
        except (OSError, KeyError, ValueError):
            return None
        if len(rows) and (rows.min() < 0 or rows.max() >= n_view_rows):
            return None
        return _prepared(task, digest, rows, pairs, names, checkpoints, condition, labels, n_checkpoints, path)


def _prepared(task, digest, rows, pairs, names, checkpoints, condition, labels, n_checkpoints, path=None):
    split_digests = []
    for train, test in pairs:
        ckpt_train = None if checkpoints is None else checkpoints[train]
        ckpt_test = None if checkpoints is None else checkpoints[test]
        split_digests.append(_digest_arrays(np.array([task.digest, task.observables]), rows[train], rows[test],
                                            ckpt_train, ckpt_test))
    return PreparedTask(task, digest, rows, pairs, names, split_digests, checkpoints, condition, labels,
                        n_checkpoints, path)


def prepare_task(task, view, n_splits=10, seed=0, digest=None, store=None):
    """Fix a task's rows and splits on a view (read from ``store`` when there).

    Parameters
    ----------
    task : BenchmarkTask
    view : AnalysisView
        All trajectories, at least the task's observables.
    n_splits : int
        Category-balanced splits (held-out tasks use one fold per value).
    seed : int
        Seed of the splits and of the trajectory subsampling.
    digest : str, optional
        :func:`data_digest` of ``view`` (computed when None).
    store : SplitStore, optional
        Where splits are read from and written to.

    Returns
    -------
    PreparedTask

    Raises
    ------
    TaskSkipped
        When the data cannot support the task (the message says why).
    """
    if not isinstance(view, AnalysisView):
        raise TypeError(f"view must be an AnalysisView, got {type(view).__name__}")
    digest = digest or data_digest(view)
    if store is not None:
        loaded = store.load(task, digest, n_splits, seed, len(view))
        if loaded is not None:
            return loaded
    mask, condition = select_condition(view.meta, task.condition)
    if task.rules is not None:
        present = set(view.y[mask].tolist())
        missing = [r for r in task.rules if r not in present]
        if missing:
            raise TaskSkipped(f"no trajectories of rule(s) {missing} in the condition {condition}")
        mask = mask & np.isin(view.y, np.array(task.rules, dtype=object))
    rows = np.flatnonzero(mask)
    meta = view.meta.iloc[rows].reset_index(drop=True)
    labels = sorted(set(meta["learning_rule"].astype(str).tolist()))
    if len(labels) < 2:
        raise TaskSkipped(f"only one learning rule ({labels}) in the condition {condition}")
    n_ckpt = view.X.shape[1]
    checkpoints = None
    if task.subsample is not None:
        n_samples, period = task.subsample
        try:
            starts = features.subsample_starts(len(rows), n_ckpt, n_samples, period, seed=seed)
        except ValueError as err:
            raise TaskSkipped(str(err)) from None
        checkpoints = (starts[:, None] + int(period) * np.arange(int(n_samples))[None, :]).astype(np.intp)
        n_ckpt = int(n_samples)
    try:
        if task.scheme == "balanced":
            splitter = splits.CategoryBalancedSplit(n_splits=n_splits, random_state=seed)
            names = [str(k) for k in range(n_splits)]
        else:
            splitter = _HELDOUT[task.scheme](random_state=seed)
            names = splitter.fold_names(meta)
        pairs = [(np.asarray(a, dtype=np.intp), np.asarray(b, dtype=np.intp)) for a, b in splitter.split(meta)]
    except ValueError as err:
        raise TaskSkipped(f"cannot split: {err}") from None
    pairs_names = [(p, n) for p, n in zip(pairs, names) if len(p[0]) and len(p[1])]
    if not pairs_names:
        raise TaskSkipped("no split with both training and test rows")
    pairs, names = [p for p, _ in pairs_names], [n for _, n in pairs_names]
    prepared = _prepared(task, digest, rows.astype(np.intp), pairs, names, checkpoints, condition, labels, n_ckpt)
    if store is not None:
        store.save(prepared, n_splits, seed)
    return prepared
