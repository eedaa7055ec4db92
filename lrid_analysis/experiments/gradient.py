"""``--gradient``: the paper's ``gradavg``, the forward-Jacobian ``gradfwd``, or both side by side.

The public ``gradavg{abs,raw,sq}_id`` is computed, as in the original, through
each layer's own backward pass: under FA / IA that backward uses the feedback
weights B, so the statistic reads B (before any learning, at checkpoint 0, it
already tells FA / IA from SGDM / Adam). ``gradfwd`` is the same summed
Jacobian through the forward weights W, what a paired pre/post recording
measures; data made by ``lrid_generate`` records both, the public data and the
shipped v1 embedded data only ``gradavg``.

An experiment taking ``--gradient`` runs each observable set that holds the
gradient (``grad``, ``all``; :data:`lrid_analysis.observables.FORWARD_SETS`)
with ``gradavg`` (``gradavg``), with ``gradfwd`` in its place (``gradfwd``:
``gradfwd``, ``all_fwd``) or both (``both``). ``auto`` (the default) is
``both`` where the data records ``gradfwd`` and ``gradavg`` where it does not
(said once, and the run is the paper's).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..dataset import (
    AnalysisView,
    DatasetError,
    apply_filters,
    check_forward_gradient,
    read_table,
)
from ..observables import FORWARD_GRADIENT_NAMES, FORWARD_SETS, OBSERVABLE_SETS
from ..sources import resolve_data
from .options import ExperimentError, observable_sets, parse_filters
from .summaries import compare

__all__ = ["GRADIENTS", "add_gradient_argument", "forward_gradient_recorded", "resolve_gradient", "gradient_sets",
           "gradient_params", "gradient_comparisons"]

#: Values of ``--gradient``.
GRADIENTS = ("auto", "gradavg", "gradfwd", "both")
#: Family name of the paired comparisons of :func:`gradient_comparisons`.
FAMILY = "gradfwd vs gradavg"


def add_gradient_argument(group):
    """Add ``--gradient`` to an argument group."""
    group.add_argument("--gradient", choices=GRADIENTS, default="auto",
                       help="which layer-wise change the gradient sets (grad, all) use: gradavg (the paper's, "
                            "each layer's own backward: reads the feedback weights B under FA/IA), gradfwd "
                            "(through the forward weights W, as a paired recording measures: sets gradfwd, "
                            "all_fwd), or both side by side; auto (default): both where the data records "
                            "gradfwd (generated data), else gradavg")


def forward_gradient_recorded(data, filters=None):
    """Whether the data of a run records the forward-Jacobian gradient (``gradfwd`` not null everywhere).

    Parameters
    ----------
    data : None, "auto", "public", "embedded", path, pandas.DataFrame or AnalysisView
    filters : dict or sequence of str, optional
        The run's row filters (``--filter``).

    Returns
    -------
    bool
        False also where the data cannot be read: the run's loading then
        reports the problem.

    Examples
    --------
    >>> forward_gradient_recorded("embedded")  # the shipped v2 data records gradfwd
    True
    """
    names = list(FORWARD_GRADIENT_NAMES)
    try:
        if isinstance(data, AnalysisView):
            index = [data.observables.index(n) for n in names if n in data.observables]
            return len(index) == len(names) and bool(np.isfinite(data.X[:, :, index]).any(axis=(0, 1)).all())
        filters = parse_filters(filters)
        if isinstance(data, pd.DataFrame):
            frame = data
        else:
            path, _ = resolve_data(data)
            frame = read_table(path, columns=names + [c for c in filters if c not in names])
        if filters:
            frame = apply_filters(frame, filters)
        check_forward_gradient(frame, names)
    except (DatasetError, FileNotFoundError, ExperimentError):
        return False
    return True


def resolve_gradient(gradient, data, filters=None, verbose=True):
    """The ``--gradient`` of a run: ``auto`` becomes ``both`` or ``gradavg`` from the data.

    Parameters
    ----------
    gradient : {"auto", "gradavg", "gradfwd", "both"}
    data, filters : see :func:`forward_gradient_recorded`
    verbose : bool
        Print the note when ``auto`` falls back to ``gradavg``.

    Returns
    -------
    {"gradavg", "gradfwd", "both"}
        ``gradfwd`` / ``both`` on data without the recording are kept: the
        run's loading then refuses them with one clear error.
    """
    if gradient not in GRADIENTS:
        raise ExperimentError(f"unknown gradient {gradient!r}; use one of {', '.join(GRADIENTS)}")
    if gradient != "auto":
        return gradient
    if forward_gradient_recorded(data, filters):
        return "both"
    if verbose:
        print("note: this data has no forward-Jacobian recording (gradfwd*_id; the public and the shipped v1 "
              "embedded data have none): the gradient sets use gradavg only, as in the paper (each layer's own "
              "backward, which reads the feedback weights B under FA/IA)")
    return "gradavg"


def gradient_sets(sets, gradient):
    """Observable sets with the gradient sets as ``gradient`` says.

    Parameters
    ----------
    sets : None, str, sequence of str or dict
        As ``--observables`` (see :func:`~lrid_analysis.experiments.options.observable_sets`).
    gradient : {"gradavg", "gradfwd", "both"}

    Returns
    -------
    dict of str to list of str
        Each of ``grad`` and ``all`` kept (``gradavg``), replaced by its
        forward variant ``gradfwd`` / ``all_fwd`` (``gradfwd``) or followed
        by it (``both``); other sets as they are.

    Examples
    --------
    >>> list(gradient_sets(["weight", "grad", "all"], "both"))
    ['weight', 'grad', 'gradfwd', 'all', 'all_fwd']
    >>> list(gradient_sets("act,all", "gradfwd"))
    ['act', 'all_fwd']
    """
    resolved = observable_sets(sets, ())
    if gradient == "gradavg":
        return resolved
    out = {}
    for label, names in resolved.items():
        forward = FORWARD_SETS.get(label)
        if forward is None or gradient == "both":
            out[label] = names
        if forward is not None:
            out[forward] = list(OBSERVABLE_SETS[forward])
    return out


def gradient_params(gradient):
    """The parameter recorded in a run's JSON files: none for the paper's ``gradavg`` (older runs resume)."""
    return {} if gradient == "gradavg" else {"gradient": gradient}


def gradient_comparisons(table, within=()):
    """Each gradient set with ``gradfwd`` against the same set with ``gradavg``, pairing splits.

    Parameters
    ----------
    table : pandas.DataFrame
        Per-split scores with an ``observables`` column.
    within : sequence of str
        Further columns defining the groups (``grouping``, ``classifier``).

    Returns
    -------
    pandas.DataFrame
        Family ``gradfwd vs gradavg``, one row per (``within``, ``set``):
        ``set`` is ``grad`` (``gradfwd`` vs ``grad``) or ``all`` (``all_fwd``
        vs ``all``); ``condition_a`` is ``gradfwd``, ``difference`` its
        accuracy minus that of ``gradavg``. Empty when no pair ran.
    """
    pairs = {}
    for paper, forward in FORWARD_SETS.items():
        pairs[paper], pairs[forward] = (paper, "gradavg"), (paper, "gradfwd")
    part = table[table["observables"].isin(list(pairs))]
    if part.empty:
        return pd.DataFrame()
    part = part.assign(set=[pairs[o][0] for o in part["observables"]],
                       gradient=[pairs[o][1] for o in part["observables"]])
    return compare(part, "gradient", within=[*within, "set"], reference="gradavg", family=FAMILY)
