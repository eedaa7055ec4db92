"""Catalogue of the 45 observable statistics and their numpy implementation.

An observable name is ``{measure}{function}_{statistic}``:

* measure in ``weight`` (the layer's forward kernel), ``act`` (the layer
  output) and ``gradavg`` (the summed input-output Jacobian averaged over
  output units);
* function in ``abs``, ``raw``, ``sq``, applied elementwise;
* statistic in ``kurtosis``, ``mean``, ``median``, ``norm``, ``skew``,
  ``thirdquartile``, ``var`` for weights and activations, and ``id`` for
  ``gradavg`` (the per-example scalar itself).

The public dataset stores them in :data:`OBSERVABLE_NAMES` order. Only
:data:`ADMISSIBLE_NAMES` (24 statistics) are finite across every public run;
the analysis uses them by default.

Conventions (Nayebi et al. 2020 and its reference code):

* median and third quartile are nearest-rank percentiles computed as the
  reference implementation did: with the values sorted in descending order,
  the ``q``-th percentile is the element at index
  ``round_half_even((n - 1) * (1 - q / 100))``;
* ``var`` is the population variance;
* ``skew`` is Pearson's second coefficient ``3 (mean - median) / std``;
* ``kurtosis`` is ``E[(x - mean)^4] / var^2`` (not excess);
* ``norm`` is the L2 norm of all values.

Statistics of a constant array (zero variance) follow IEEE arithmetic:
``skew`` and ``kurtosis`` become NaN or inf, never an exception.
"""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pandas as pd

__all__ = [
    "MEASURES",
    "FUNCTIONS",
    "STATISTICS",
    "FORWARD_GRADIENT_NAMES",
    "OBSERVABLE_NAMES",
    "ADMISSIBLE_NAMES",
    "MEASURE_GROUPS",
    "OBSERVABLE_SETS",
    "resolve_observables",
    "catalogue",
    "select_observables",
    "parse_observable",
    "apply_function",
    "unit_statistics",
    "weight_observables",
    "activation_observables",
    "gradavg_observables",
    "obfuscate_units",
    "n_kept_units",
    "nearest_rank_percentile",
]

MEASURES = ("weight", "act", "gradavg")
FUNCTIONS = ("abs", "raw", "sq")
STATISTICS = ("kurtosis", "mean", "median", "norm", "skew", "thirdquartile", "var")

#: The 45 names in the public ``obs_keys`` order.
OBSERVABLE_NAMES = tuple(
    [f"{m}{f}_{s}" for m, f, s in product(("weight", "act"), FUNCTIONS, STATISTICS)]
    + [f"gradavg{f}_id" for f in FUNCTIONS]
)

#: ``gradfwd{abs,raw,sq}_id``: the layer-wise change through the forward weights (the input-output
#: Jacobian a paired recording measures), recorded by lrid_generate beside the public ``gradavg``
#: (which, as in the original, runs each layer's own backward and so reads FA / IA's feedback
#: weights B). Equal to ``gradavg`` for backprop networks without measurement noise.
FORWARD_GRADIENT_NAMES = tuple(f"gradfwd{f}_id" for f in FUNCTIONS)

_ADMISSIBLE_WEIGHT = [
    f"weight{f}_{s}"
    for f in FUNCTIONS
    for s in STATISTICS
    if (f != "sq" and s in ("mean", "median", "norm", "thirdquartile", "var"))
    or (f == "sq" and s in ("mean", "median", "thirdquartile"))
]
_ADMISSIBLE_ACT = [
    f"act{f}_{s}" for f in ("abs", "raw") for s in ("mean", "median", "norm", "thirdquartile")
]
_ADMISSIBLE_GRAD = [f"gradavg{f}_id" for f in FUNCTIONS]

#: The 24 statistics that are finite across every public run.
ADMISSIBLE_NAMES = tuple(_ADMISSIBLE_WEIGHT + _ADMISSIBLE_ACT + _ADMISSIBLE_GRAD)

#: The named observable sets, defined here once for the whole package: the
#: admissible statistics of each measure (13 weight, 8 activation, 3 gradient),
#: all 24 admissible ones, and all 45.
OBSERVABLE_SETS = {
    "weight": tuple(_ADMISSIBLE_WEIGHT),
    "act": tuple(_ADMISSIBLE_ACT),
    "grad": tuple(_ADMISSIBLE_GRAD),
    "all": ADMISSIBLE_NAMES,
    "all45": OBSERVABLE_NAMES,
}
#: The admissible sets only (``OBSERVABLE_SETS`` without ``all45``).
MEASURE_GROUPS = {name: names for name, names in OBSERVABLE_SETS.items() if name != "all45"}


def resolve_observables(spec=None):
    """Statistic names of an observable set, a comma list or a sequence of names and sets.

    Parameters
    ----------
    spec : None, str or sequence of str
        None: the 24 admissible statistics (``"all"``). A set name of
        :data:`OBSERVABLE_SETS`, a statistic name, a comma list, or a
        sequence of those (sets expand in place; duplicates are dropped).

    Returns
    -------
    list of str

    Raises
    ------
    ValueError
        For an unknown name, listing the sets and the statistics.

    Examples
    --------
    >>> resolve_observables("grad")
    ['gradavgabs_id', 'gradavgraw_id', 'gradavgsq_id']
    >>> resolve_observables("actabs_norm,grad")[:2]
    ['actabs_norm', 'gradavgabs_id']
    >>> len(resolve_observables()), len(resolve_observables("all45"))
    (24, 45)
    """
    if spec is None:
        return list(OBSERVABLE_SETS["all"])
    tokens = [t.strip() for t in spec.split(",")] if isinstance(spec, str) else list(spec)
    out = []
    for token in tokens:
        if token in OBSERVABLE_SETS:
            names = OBSERVABLE_SETS[token]
        elif token in OBSERVABLE_NAMES:
            names = (token,)
        else:
            raise ValueError(f"unknown observable set or statistic {token!r}; sets: {', '.join(OBSERVABLE_SETS)}; "
                             f"statistics: {', '.join(OBSERVABLE_NAMES)}")
        out += [name for name in names if name not in out]
    return out


def parse_observable(name):
    """Split an observable name into ``(measure, function, statistic)``.

    Raises
    ------
    ValueError
        If ``name`` is not one of the 45 observables; the message lists them.
    """
    if name not in OBSERVABLE_NAMES:
        raise ValueError(
            f"unknown observable {name!r}; known observables are: {', '.join(OBSERVABLE_NAMES)}"
        )
    head, statistic = name.split("_")
    for measure in MEASURES:
        if head.startswith(measure):
            return measure, head[len(measure):], statistic
    raise AssertionError(name)  # pragma: no cover - every catalogued name has a measure


def catalogue():
    """The observable catalogue as a DataFrame.

    Returns
    -------
    table : pandas.DataFrame, shape (45, 5)
        Columns ``name``, ``measure``, ``function``, ``statistic``,
        ``admissible``, in public order. Filter it like any DataFrame, e.g.
        ``catalogue().query("measure == 'act' and admissible")``.
    """
    rows = [(n, *parse_observable(n), n in ADMISSIBLE_NAMES) for n in OBSERVABLE_NAMES]
    return pd.DataFrame(rows, columns=["name", "measure", "function", "statistic", "admissible"])


def select_observables(measure=None, function=None, statistic=None, admissible=None):
    """Names of the observables matching every given criterion, in public order.

    Parameters
    ----------
    measure, function, statistic : str or sequence of str or None
        Keep names whose part is one of these; None keeps all.
    admissible : bool or None
        True keeps only the 24 admissible statistics, False only the others.

    Returns
    -------
    names : list of str
    """
    table = catalogue()
    keep = np.ones(len(table), dtype=bool)
    for column, wanted, known in (
        ("measure", measure, MEASURES),
        ("function", function, FUNCTIONS),
        ("statistic", statistic, STATISTICS + ("id",)),
    ):
        if wanted is None:
            continue
        wanted = [wanted] if isinstance(wanted, str) else list(wanted)
        unknown = sorted(set(wanted) - set(known))
        if unknown:
            raise ValueError(f"unknown {column} {unknown}; choose from {list(known)}")
        keep &= table[column].isin(wanted).to_numpy()
    if admissible is not None:
        keep &= table["admissible"].to_numpy() == bool(admissible)
    return table.loc[keep, "name"].tolist()


def apply_function(x, function):
    """Apply an observable function (``abs``, ``raw`` or ``sq``) elementwise."""
    if function == "abs":
        return np.abs(x)
    if function == "raw":
        return np.asarray(x)
    if function == "sq":
        return np.square(x)
    raise ValueError(f"unknown function {function!r}; choose from {list(FUNCTIONS)}")


def nearest_rank_percentile(x, q, axis=-1):
    """Nearest-rank percentile with the reference code's tie rule.

    Parameters
    ----------
    x : ndarray
        Values; the percentile is taken along ``axis``.
    q : float
        Percentile in [0, 100].
    axis : int

    Returns
    -------
    ndarray
        ``x`` reduced along ``axis``.
    """
    x = np.moveaxis(np.asarray(x), axis, -1)
    n = x.shape[-1]
    descending = -np.sort(-x, axis=-1)
    index = int(np.rint((n - 1) * (1.0 - q / 100.0)))
    return descending[..., index]


def unit_statistics(x, statistics=STATISTICS):
    """The seven distribution statistics of each row of ``x``.

    Parameters
    ----------
    x : ndarray, shape (n_rows, n_units)
        Values after the function was applied; statistics reduce the unit axis.
    statistics : sequence of str

    Returns
    -------
    dict of str to ndarray of shape (n_rows,)
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"expected a (n_rows, n_units) array with n_units >= 1, got shape {x.shape}")
    out = {}
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        mean = x.mean(axis=1)
        centred = x - mean[:, None]
        var = np.mean(centred**2, axis=1)
        need_median = "median" in statistics or "skew" in statistics
        median = nearest_rank_percentile(x, 50.0) if need_median else None
        for stat in statistics:
            if stat == "mean":
                out[stat] = mean
            elif stat == "var":
                out[stat] = var
            elif stat == "median":
                out[stat] = median
            elif stat == "thirdquartile":
                out[stat] = nearest_rank_percentile(x, 75.0)
            elif stat == "norm":
                out[stat] = np.sqrt(np.sum(x**2, axis=1))
            elif stat == "skew":
                out[stat] = 3.0 * (mean - median) / np.sqrt(var)
            elif stat == "kurtosis":
                out[stat] = np.mean(centred**4, axis=1) / var**2
            else:
                raise ValueError(f"unknown statistic {stat!r}; choose from {list(STATISTICS)}")
    return out


def _measure_observables(measure, rows):
    """All 21 ``measure`` observables of ``rows`` (n_rows, n_units), averaged over rows."""
    out = {}
    for function in FUNCTIONS:
        stats = unit_statistics(apply_function(rows, function))
        for stat in STATISTICS:
            with np.errstate(invalid="ignore"):
                out[f"{measure}{function}_{stat}"] = float(np.mean(stats[stat]))
    return out


def weight_observables(weight):
    """The 21 weight observables of one kernel (all axes reduced).

    Parameters
    ----------
    weight : ndarray, any shape
        The layer's forward kernel.

    Returns
    -------
    dict of str to float
        ``weight{function}_{statistic}`` for every function and statistic.
    """
    return _measure_observables("weight", np.asarray(weight).reshape(1, -1))


def activation_observables(activations):
    """The 21 activation observables of one layer output.

    Parameters
    ----------
    activations : ndarray, shape (n_examples, ...)
        Layer output per example. Each statistic is computed over the
        non-batch axes of one example, then averaged over examples.

    Returns
    -------
    dict of str to float
    """
    activations = np.asarray(activations)
    return _measure_observables("act", activations.reshape(activations.shape[0], -1))


def gradavg_observables(gradavg):
    """The 3 ``gradavg`` observables from per-example summed Jacobians.

    Parameters
    ----------
    gradavg : ndarray, shape (n_examples,)
        Per example, ``(1 / N_out) sum_i sum_j dy_j / dx_i``.

    Returns
    -------
    dict of str to float
        ``gradavg{function}_id``: the function of each example's value,
        averaged over examples.
    """
    g = np.asarray(gradavg, dtype=np.float64).reshape(-1)
    return {f"gradavg{f}_id": float(np.mean(apply_function(g, f))) for f in FUNCTIONS}


def n_kept_units(n_units, unit_fraction):
    """Number of units kept by subsampling: ``ceil(unit_fraction * n_units)``, at least 1."""
    if not 0.0 < unit_fraction <= 1.0:
        raise ValueError(f"unit_fraction must be in (0, 1], got {unit_fraction}")
    return max(1, int(math.ceil(unit_fraction * n_units)))


def obfuscate_units(units, unit_fraction=1.0, noise_std=0.0, seed=0, batch_axis=True):
    """Measurement noise then unit subsampling, as in a limited recording.

    I.i.d. Gaussian noise of standard deviation ``noise_std`` is added to every
    unit, then ``ceil(unit_fraction * n_units)`` units are kept: the first
    entries of ``numpy.random.RandomState(seed).permutation(n_units)``, the
    same units for every example. The noise is drawn from
    ``numpy.random.default_rng(seed)``.

    Parameters
    ----------
    units : ndarray, shape (n_examples, ...) if ``batch_axis`` else any shape
        Activations (first axis is examples) or a weight kernel.
    unit_fraction : float in (0, 1]
    noise_std : float >= 0
    seed : int
    batch_axis : bool
        Whether the first axis indexes examples (not subsampled).

    Returns
    -------
    ndarray, shape (n_examples, n_kept) if ``batch_axis`` else (1, n_kept)
    """
    if noise_std < 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std}")
    units = np.asarray(units, dtype=np.float64)
    flat = units.reshape(units.shape[0], -1) if batch_axis else units.reshape(1, -1)
    if noise_std > 0:
        flat = flat + np.random.default_rng(seed).normal(0.0, noise_std, size=flat.shape)
    n_keep = n_kept_units(flat.shape[1], unit_fraction)
    if n_keep < flat.shape[1]:
        keep = np.random.RandomState(seed).permutation(flat.shape[1])[:n_keep]
        flat = flat[:, keep]
    return flat
