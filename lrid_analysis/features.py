"""Classifier features from an :class:`~lrid_analysis.dataset.AnalysisView`.

Observable sets
    ``"weight"``, ``"act"``, ``"grad"`` and ``"all"`` name the admissible
    statistics of each measure (24 in all, see
    :data:`lrid_analysis.observables.OBSERVABLE_SETS`, where ``"all45"``
    names all 45, ``"gradfwd"`` the forward-Jacobian gradient of generated
    data and ``"all_fwd"`` the 24 with ``grad`` replaced by ``gradfwd``); any
    explicit list of observable names is accepted as well (:func:`select`).

Flat layout (used by every 2-D classifier, importance and plot)
    :func:`flatten` returns an array of shape
    ``(n_trajectories, n_observables * n_checkpoints + 3)``. It is
    statistic-major: observable ``j`` occupies columns
    ``j * n_checkpoints .. (j + 1) * n_checkpoints - 1`` with the checkpoints
    in order, as in the original project. The three layer-position one-hot
    columns (``early``, ``middle``, ``deep``) come LAST.
    :func:`feature_groups` and :func:`feature_names` describe those columns.

Trajectory layout (the trajectory axis kept in X)
    :func:`trajectories` returns ``(n_trajectories, n_checkpoints,
    n_observables + 3)``: the observables, then the layer-position one-hot
    as three channels constant along the checkpoints.
    :class:`lrid_analysis.trajectories.Flatten` turns it into the flat
    layout; :class:`lrid_analysis.trajectories.WindowGeneralizer` trains on
    one window of it and tests on another.

Sequence layout (for sequence classifiers such as a Conv1D network)
    :func:`sequences` returns ``(n_trajectories, n_observables,
    n_checkpoints)`` plus the one-hot ``(n_trajectories, 3)``.

Trajectory operations (each returns a new view, ``X`` and ``epochs`` cut)
    :func:`subsample` (k points at a fixed period from a random start),
    :func:`window` (a consecutive third of the trajectory) and
    :func:`average` (the trajectory mean, one checkpoint left).

Choices the paper leaves open
    The paper (section 5, Fig. 4a) draws "a fixed number of samples at a fixed
    spacing" from each trajectory and defers the details to its Appendix
    B.3.1, which our copy lacks. Here the start is drawn independently for
    every trajectory, uniformly over all starts that keep the k points inside
    the trajectory (``0 .. n_checkpoints - 1 - (k - 1) * period``), with a
    seeded :func:`numpy.random.default_rng`. The windows of Fig. 4b split the
    checkpoints into three consecutive parts with :func:`numpy.array_split`
    (checkpoints 0-6, 7-13, 14-20 for 21 checkpoints).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .dataset import LAYER_POSITIONS
from .observables import MEASURE_GROUPS, measure_group, resolve_observables

__all__ = [
    "WINDOWS",
    "select",
    "check_finite",
    "flatten",
    "trajectories",
    "feature_groups",
    "feature_names",
    "sequences",
    "subsample",
    "subsample_starts",
    "window",
    "window_checkpoints",
    "average",
]

#: Names of the three consecutive trajectory windows, in order.
WINDOWS = ("early", "middle", "late")

_POSITION_GROUP = "layer_position"


def select(view, observables="all", check=True):
    """Restrict a view to an observable set and check that it is finite.

    Parameters
    ----------
    view : AnalysisView
    observables : str or sequence of str
        ``"weight"``, ``"act"``, ``"grad"``, ``"all"`` (admissible statistics),
        ``"gradfwd"``, ``"all_fwd"``, ``"all45"`` or explicit observable names (see
        :func:`lrid_analysis.observables.resolve_observables`).
    check : bool
        Run :func:`check_finite` on the result.

    Returns
    -------
    AnalysisView
        ``X`` of shape (n_trajectories, n_checkpoints, n_selected).
    """
    out = view.select_observables(resolve_observables(observables))
    if check:
        check_finite(out)
    return out


def check_finite(view):
    """Raise a clear error when a statistic of the view has non-finite values.

    Parameters
    ----------
    view : AnalysisView

    Returns
    -------
    AnalysisView
        The same view, so calls can be chained.

    Raises
    ------
    ValueError
        Naming every statistic with NaN or infinite values and how many
        trajectories (rows) are affected, and suggesting the admissible set.
    """
    bad_rows = ~np.isfinite(view.X).all(axis=1)  # (n_traj, n_obs)
    counts = bad_rows.sum(axis=0)
    if counts.any():
        listed = ", ".join(
            f"{name} ({int(n)} of {len(view)} trajectories)"
            for name, n in zip(view.observables, counts)
            if n
        )
        raise ValueError(
            f"non-finite values (NaN or inf) in statistic(s): {listed}. Drop them, or use an "
            f"admissible set ({', '.join(MEASURE_GROUPS)}), whose 24 statistics are finite "
            "across the public runs."
        )
    return view


def flatten(view, include_position=True, check=True):
    """The flat 2-D feature matrix of a view.

    Parameters
    ----------
    view : AnalysisView
        ``X`` of shape (n_trajectories, n_checkpoints, n_observables).
    include_position : bool
        Append the three layer-position one-hot columns.
    check : bool
        Run :func:`check_finite` first.

    Returns
    -------
    ndarray, shape (n_trajectories, n_observables * n_checkpoints [+ 3])
        Statistic-major: column ``j * n_checkpoints + c`` holds observable
        ``j`` at checkpoint ``c``; the one-hot (``early``, ``middle``,
        ``deep``) fills the last three columns. Same dtype as ``view.X``.
    """
    if check:
        check_finite(view)
    n_traj = view.X.shape[0]
    flat = np.ascontiguousarray(np.transpose(view.X, (0, 2, 1))).reshape(n_traj, -1)
    if include_position:
        flat = np.concatenate([flat, view.layer_onehot.astype(flat.dtype, copy=False)], axis=1)
    return flat


def trajectories(view, include_position=True, check=True):
    """The 3-D feature array of a view: trajectories, then the one-hot as constant channels.

    Parameters
    ----------
    view : AnalysisView
        ``X`` of shape (n_trajectories, n_checkpoints, n_observables).
    include_position : bool
        Append the three layer-position one-hot channels.
    check : bool
        Run :func:`check_finite` first.

    Returns
    -------
    ndarray, shape (n_trajectories, n_checkpoints, n_observables [+ 3])
        Same dtype as ``view.X``; channel ``n_observables + p`` is the
        one-hot of position ``p`` (``early``, ``middle``, ``deep``) at every
        checkpoint. ``Flatten().fit_transform`` of it equals
        :func:`flatten` of the view.

    Examples
    --------
    >>> from lrid_analysis.dataset import load_view
    >>> from lrid_analysis.trajectories import Flatten
    >>> view = load_view("embedded", "grad", filters={"task": "digits"})
    >>> X = trajectories(view)
    >>> X.shape[1:] == (view.X.shape[1], len(view.observables) + 3)
    True
    >>> bool((Flatten().fit_transform(X) == flatten(view)).all())
    True
    """
    if check:
        check_finite(view)
    if not include_position:
        return view.X.copy()
    onehot = np.broadcast_to(view.layer_onehot.astype(view.X.dtype, copy=False)[:, None, :],
                             (len(view), view.X.shape[1], len(LAYER_POSITIONS)))
    return np.concatenate([view.X, onehot], axis=2)


def feature_groups(observables, n_checkpoints=None, include_position=True, by="statistic"):
    """Column indices of the flat layout, or channel indices of the trajectory layout, by statistic or measure.

    Parameters
    ----------
    observables : str or sequence of str
        The view's observables (a set name or a list, in view order).
    n_checkpoints : int, optional
        Checkpoints of the flat layout (:func:`flatten`). None: indices of
        the channels (last axis) of the trajectory layout
        (:func:`trajectories`), which are those of a flat layout of one
        checkpoint.
    include_position : bool
        Whether the layout has the one-hot columns (group ``"layer_position"``).
    by : {"statistic", "measure"}
        ``"statistic"``: one group per observable (its whole trajectory);
        ``"measure"``: one group per measure ``weight``, ``act``, ``grad``
        (and ``gradfwd``, see :func:`lrid_analysis.observables.measure_group`).

    Returns
    -------
    dict of str to ndarray of int
        In order of first appearance in the layout; every column (channel)
        appears in exactly one group.

    Examples
    --------
    >>> {k: v.tolist() for k, v in feature_groups(["actabs_norm", "gradavgsq_id"], 2).items()}
    {'actabs_norm': [0, 1], 'gradavgsq_id': [2, 3], 'layer_position': [4, 5, 6]}
    >>> {k: v.tolist() for k, v in feature_groups(["actabs_norm", "gradavgsq_id"], by="measure").items()}
    {'act': [0], 'grad': [1], 'layer_position': [2, 3, 4]}
    """
    names = resolve_observables(observables)
    n_checkpoints = 1 if n_checkpoints is None else int(n_checkpoints)
    if n_checkpoints < 1:
        raise ValueError(f"n_checkpoints must be >= 1, got {n_checkpoints}")
    if by not in ("statistic", "measure"):
        raise ValueError(f"by must be 'statistic' or 'measure', got {by!r}")
    groups = {}
    for j, name in enumerate(names):
        key = name if by == "statistic" else measure_group(name)
        cols = np.arange(j * n_checkpoints, (j + 1) * n_checkpoints)
        groups[key] = np.concatenate([groups[key], cols]) if key in groups else cols
    if include_position:
        start = len(names) * n_checkpoints
        groups[_POSITION_GROUP] = np.arange(start, start + len(LAYER_POSITIONS))
    return groups


def feature_names(observables, n_checkpoints, include_position=True):
    """Names of the flat layout's columns.

    Returns
    -------
    list of str, length n_observables * n_checkpoints [+ 3]
        ``"{observable}@{checkpoint}"`` then ``"layer_position={early,middle,deep}"``.
    """
    names = resolve_observables(observables)
    out = [f"{name}@{c}" for name in names for c in range(int(n_checkpoints))]
    if include_position:
        out += [f"{_POSITION_GROUP}={p}" for p in LAYER_POSITIONS]
    return out


def sequences(view, check=True):
    """Trajectories laid out for sequence classifiers.

    Parameters
    ----------
    view : AnalysisView
    check : bool
        Run :func:`check_finite` first.

    Returns
    -------
    X : ndarray, shape (n_trajectories, n_observables, n_checkpoints)
        Channels (observables) first, time last.
    onehot : ndarray, shape (n_trajectories, 3)
        Layer position (``early``, ``middle``, ``deep``).
    """
    if check:
        check_finite(view)
    return np.ascontiguousarray(np.transpose(view.X, (0, 2, 1))), view.layer_onehot.copy()


def _with_checkpoints(view, index):
    """A new view keeping, per trajectory, the checkpoints ``index`` (n_traj, k)."""
    rows = np.arange(len(view))[:, None]
    return replace(view, X=view.X[rows, index], epochs=view.epochs[rows, index], meta=view.meta.copy())


def subsample_starts(n_trajectories, n_checkpoints, n_samples, period, seed=0):
    """Random starts for :func:`subsample`.

    Returns
    -------
    ndarray of int, shape (n_trajectories,)
        Uniform over ``0 .. n_checkpoints - 1 - (n_samples - 1) * period``,
        drawn with ``numpy.random.default_rng(seed)``.
    """
    n_samples, period = int(n_samples), int(period)
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    if period < 1:
        raise ValueError(f"period must be >= 1 checkpoint, got {period}")
    span = (n_samples - 1) * period
    if span > n_checkpoints - 1:
        raise ValueError(
            f"cannot take {n_samples} samples {period} checkpoints apart from {n_checkpoints} checkpoints: "
            f"they span {span + 1} checkpoints (at most {(n_checkpoints - 1) // period + 1} samples at this period)"
        )
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_checkpoints - span, size=n_trajectories)


def subsample(view, n_samples, period, seed=0):
    """Keep ``n_samples`` checkpoints ``period`` apart from a random start per trajectory.

    Trajectory ``i`` keeps checkpoints ``s_i, s_i + period, ...,
    s_i + (n_samples - 1) * period``, with ``s_i`` uniform over the starts
    that fit (see :func:`subsample_starts`). The paper's Fig. 4a uses this
    with the period in checkpoints (5 epochs each in the public data).

    Parameters
    ----------
    view : AnalysisView
    n_samples : int
    period : int
        Spacing in checkpoints (1 = consecutive).
    seed : int

    Returns
    -------
    AnalysisView
        ``X`` of shape (n_trajectories, n_samples, n_observables), ``epochs``
        cut the same way; ``meta`` gains a ``subsample_start`` column.
    """
    starts = subsample_starts(len(view), view.X.shape[1], n_samples, period, seed=seed)
    index = starts[:, None] + int(period) * np.arange(int(n_samples))[None, :]
    out = _with_checkpoints(view, index)
    out.meta["subsample_start"] = starts
    return out


def window_checkpoints(n_checkpoints, part):
    """Checkpoint indices of a consecutive third of the trajectory.

    Parameters
    ----------
    n_checkpoints : int
    part : {"early", "middle", "late"}

    Returns
    -------
    ndarray of int
        ``numpy.array_split(arange(n_checkpoints), 3)[k]`` (0-6, 7-13, 14-20
        for 21 checkpoints).
    """
    if part not in WINDOWS:
        raise ValueError(f"unknown window {part!r}; use one of {WINDOWS}")
    if n_checkpoints < len(WINDOWS):
        raise ValueError(f"need at least 3 checkpoints to cut windows, got {n_checkpoints}")
    return np.array_split(np.arange(n_checkpoints), len(WINDOWS))[WINDOWS.index(part)]


def window(view, part):
    """Keep one consecutive third (``early``, ``middle`` or ``late``) of every trajectory.

    Returns
    -------
    AnalysisView
        ``X`` of shape (n_trajectories, len(window), n_observables).
    """
    cols = window_checkpoints(view.X.shape[1], part)
    return _with_checkpoints(view, np.broadcast_to(cols, (len(view), len(cols))))


def average(view):
    """Replace every trajectory by its mean over checkpoints.

    Returns
    -------
    AnalysisView
        ``X`` of shape (n_trajectories, 1, n_observables); ``epochs`` holds
        the mean epoch (NaN when unknown).
    """
    return replace(
        view,
        X=view.X.mean(axis=1, keepdims=True, dtype=np.float64).astype(view.X.dtype),
        epochs=view.epochs.mean(axis=1, keepdims=True),
        meta=view.meta.copy(),
    )
