"""The data of an experiment run: load once, keep full-access trajectories, describe it in one line."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..dataset import AnalysisView, DatasetError, apply_filters, load_view, to_view
from ..observables import KNOWN_NAMES
from ..sources import resolve_data
from .options import ExperimentError

__all__ = ["union", "load_data", "data_line"]


def union(sets):
    """The statistics of several observable sets, in catalogue order.

    Parameters
    ----------
    sets : dict of str to list of str

    Returns
    -------
    list of str

    Examples
    --------
    >>> union({"a": ["gradavgsq_id"], "b": ["actabs_norm", "gradavgsq_id"]})
    ['actabs_norm', 'gradavgsq_id']
    """
    wanted = {name for names in sets.values() for name in names}
    return [name for name in KNOWN_NAMES if name in wanted]


def _full_access(view, description):
    if not {"unit_fraction", "noise_std"} <= set(view.meta.columns):
        return view, description
    keep = ((view.meta["unit_fraction"] == 1.0) & (view.meta["noise_std"] == 0.0)).to_numpy()
    if not keep.any():
        raise ExperimentError("no full-access trajectories (unit_fraction = 1, noise_std = 0) in the selected data", 1)
    if not keep.all():
        description += (f"; kept the {int(keep.sum())} full-access trajectories "
                        f"(left out {int((~keep).sum())} with unit subsampling or noise)")
        view = view.subset(keep)
    return view, description


def load_data(data, observables, filters=None, full_access=True):
    """Load the data of a run as an analysis view.

    Parameters
    ----------
    data : None, "auto", "public", "embedded", path, pandas.DataFrame or AnalysisView
    observables : list of str
        Statistics to load (already resolved, see
        :func:`lrid_analysis.observables.resolve_observables`).
    filters : dict, optional
        ``{column: values}`` (see :func:`lrid_analysis.dataset.apply_filters`).
    full_access : bool
        Keep only trajectories measured with all units and no noise
        (``unit_fraction == 1``, ``noise_std == 0``).

    Returns
    -------
    view : AnalysisView
        ``X`` of shape (n_trajectories, n_checkpoints, len(observables)).
    description : str
        Which data, as printed by every run.

    Raises
    ------
    ExperimentError
        Exit code 1 for missing or unsuitable data (or memory running out
        while loading), 2 for a bad filter.

    Examples
    --------
    >>> view, text = load_data("embedded", ["gradavgsq_id"], filters={"task": ["digits"]})
    >>> view.X.shape[2], text.startswith("embedded dataset")
    (1, True)
    """
    try:
        if isinstance(data, AnalysisView):
            description = f"analysis view given in Python ({len(data)} trajectories)"
            view = data
            if filters:
                meta = data.meta.assign(_row=np.arange(len(data)))
                view = data.subset(apply_filters(meta, filters, where="view")["_row"].to_numpy())
            missing = [n for n in observables if n not in view.observables]
            if missing:
                raise ExperimentError(f"the view lacks statistic(s) {missing}; it has {view.observables}", 1)
            view = view.select_observables(observables)
        elif isinstance(data, pd.DataFrame):
            description = f"table given in Python ({len(data)} rows)"
            view = to_view(data, observables, filters=filters, where="table")
        else:
            path, description = resolve_data(data)
            # every measurement condition: the run keeps the full-access rows itself (unit_noise needs them all)
            view = load_view(path, observables, filters=filters, full_access=False)
    except FileNotFoundError as err:
        raise ExperimentError(str(err), 1) from None
    except MemoryError:
        raise ExperimentError(f"out of memory while loading {data!r}: select fewer rows (--filter) or observables "
                              "(--observables), or use a machine with more memory", 1) from None
    except DatasetError as err:
        raise ExperimentError(str(err), 2 if "no rows with" in str(err) or "unknown column" in str(err) else 1) from None
    view, description = _full_access(view, description) if full_access else (view, description)
    rules = sorted(set(view.y))
    if len(rules) < 2:
        raise ExperimentError(f"need at least two learning rules to classify; the selected data has {rules}", 1)
    return view, description


def data_line(view, description):
    """One line naming the data and its size (two lines of text)."""
    counts = pd.Series(view.y).value_counts().sort_index()
    networks = view.meta["run_id"].nunique() if "run_id" in view.meta.columns else "?"
    rules = ", ".join(f"{rule} {n}" for rule, n in counts.items())
    return f"data: {description}\n      {len(view)} trajectories of {networks} networks ({rules})"
