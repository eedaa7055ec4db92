"""The classifier registry: built-ins, plugins, names and importable paths."""

from __future__ import annotations

import importlib
import inspect
import warnings
from dataclasses import dataclass
from importlib import metadata

from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import ParameterGrid

from .boosting import XGBoostClassifier
from .conv1d import Conv1DClassifier
from .forest_selection import OOBForestSelection
from .grid_selection import GridSelection
from .grids import (
    CONV1D_GRID,
    LOGISTIC_GRID,
    RANDOM_FOREST_GRID,
    SVM_GRID,
    XGBOOST_GRID,
)
from .linear import LinearSVMClassifier, LogisticClassifier
from .protocols import COMPACT_SETTINGS, PAPER_SETTINGS, SELECTIONS

#: Entry-point group through which other packages register classifiers.
ENTRY_POINT_GROUP = "lrid.classifiers"

_CONTEXT = ("n_checkpoints", "n_categorical", "random_state", "n_jobs")


@dataclass
class _Entry:
    name: str
    factory: object
    param_grid: dict | None
    description: str
    search: object
    origin: str


_REGISTRY: dict = {}
_PLUGINS_LOADED = False


def register_classifier(name, factory, param_grid=None, description="", search=None, overwrite=False):
    """Add a classifier to the registry.

    Parameters
    ----------
    name : str
        Registry name (no ``":"``).
    factory : callable
        ``factory(**params) -> estimator``. Of ``n_checkpoints``,
        ``n_categorical``, ``random_state`` and ``n_jobs``, those the factory
        accepts are passed by :func:`get_classifier`; ``random_state`` and
        ``n_jobs`` are otherwise set on the estimator when it has them.
    param_grid : dict of str to list, optional
        Hyperparameter grid over the estimator's parameters.
    description : str
        One line for :func:`list_classifiers`; default: the factory's
        docstring's first line.
    search : callable, optional
        ``search(estimator, param_grid, random_state=..., n_jobs=...) ->
        estimator`` building the selecting estimator; default
        :class:`GridSelection`.
    overwrite : bool
        Replace an existing entry of that name instead of raising.
    """
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"classifier name must be a non-empty string without ':', got {name!r}")
    if not callable(factory):
        raise TypeError(f"classifier {name!r}: factory must be callable, got {type(factory).__name__}")
    if param_grid is not None:
        if not isinstance(param_grid, dict) or not all(isinstance(v, (list, tuple)) and len(v) for v in param_grid.values()):
            raise ValueError(f"classifier {name!r}: param_grid must map names to non-empty lists, got {param_grid!r}")
        param_grid = {k: list(v) for k, v in param_grid.items()}
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"classifier {name!r} is already registered ({_REGISTRY[name].origin}); pass overwrite=True")
    if not description:
        doc = inspect.getdoc(factory) or ""
        description = doc.strip().splitlines()[0] if doc.strip() else ""
    _REGISTRY[name] = _Entry(name, factory, param_grid, description, search, "registered")


def _load_plugins():
    """Register the classifiers of the ``lrid.classifiers`` entry points (once)."""
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _REGISTRY:
            warnings.warn(f"entry point {ep.value!r} ignored: classifier {ep.name!r} is already registered",
                          stacklevel=3)
            continue
        try:
            obj = ep.load()
            grid = None
            if isinstance(obj, (tuple, list)):
                if len(obj) != 2:
                    raise TypeError("expected a factory or a (factory, param_grid) pair")
                obj, grid = obj
            register_classifier(ep.name, obj, param_grid=grid)
            _REGISTRY[ep.name].origin = f"entry point {ep.value}"
        except Exception as err:  # a broken plugin must not break the registry
            warnings.warn(f"could not load classifier entry point {ep.name!r} ({ep.value}): {err}", stacklevel=3)


def list_classifiers():
    """Registered classifiers and their descriptions.

    Returns
    -------
    dict of str to str
        Name to one-line description, built-ins first, then entry points.
    """
    _load_plugins()
    return {name: entry.description for name, entry in _REGISTRY.items()}


def _entry(name):
    _load_plugins()
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown classifier {name!r}; registered: {', '.join(_REGISTRY)} "
            "(or pass 'package.module:Name' or an estimator object)"
        )
    return _REGISTRY[name]


def get_param_grid(name):
    """A copy of the registered grid of ``name`` (None when it has none)."""
    grid = _entry(name).param_grid
    return None if grid is None else {k: list(v) for k, v in grid.items()}


def import_object(path):
    """The object named by ``"package.module:Name"`` (``Name`` may be dotted).

    Raises
    ------
    ValueError
        Naming the path and what is wrong: malformed, module not importable,
        or attribute missing.
    """
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"classifier path {path!r} must look like 'package.module:Name'")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"classifier path {path!r}: cannot import module {module_name!r} ({err})") from err
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"classifier path {path!r}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def _build(factory, context, params, who):
    """Call a factory with the context arguments it accepts, then the shared settings it has."""
    try:
        named = inspect.signature(factory).parameters
        accepted = {k for k in context if k in named and named[k].kind is not inspect.Parameter.VAR_KEYWORD}
    except (TypeError, ValueError):  # builtins without a signature
        accepted = set()
    kwargs = {k: v for k, v in context.items() if k in accepted and k not in params}
    try:
        estimator = factory(**kwargs, **params)
    except TypeError as err:
        raise TypeError(f"classifier {who}: could not build it with parameters {sorted(params)} ({err})") from err
    if not (hasattr(estimator, "fit") and hasattr(estimator, "predict")):
        raise TypeError(f"classifier {who}: the factory returned {type(estimator).__name__}, which has no fit/predict")
    if hasattr(estimator, "get_params"):
        available = estimator.get_params(deep=False)
        shared = {k: context[k] for k in ("random_state", "n_jobs") if k in available and k not in accepted
                  and k not in params}
        if shared:
            estimator.set_params(**shared)
    return estimator


def _check_grid(estimator, grid, who):
    params = estimator.get_params()
    unknown = sorted(set(grid) - set(params))
    if unknown:
        raise ValueError(f"classifier {who}: grid key(s) {unknown} are not parameters; valid: {sorted(params)}")


def get_classifier(name, n_checkpoints=21, n_categorical=3, random_state=0, select=True, n_jobs=1,
                   param_grid=None, selection=None, **params):
    """Build a classifier by registry name or ``"package.module:Name"``.

    Parameters
    ----------
    name : str
        A name from :func:`list_classifiers`, or an importable
        ``"package.module:Name"`` (a class or factory, without a grid).
    n_checkpoints, n_categorical : int
        Feature layout, passed to classifiers that need it.
    random_state : int
        Seed of the estimator and of its hyperparameter selection.
    select : bool
        With a grid: return an estimator that selects its hyperparameters
        inside ``fit`` (``best_params_``). False: fixed parameters (the
        factory's defaults and ``params``).
    n_jobs : int
        Parallel jobs for the selection (and the estimator when it has ``n_jobs``).
    param_grid : dict, optional
        Replaces the registered grid (or the selection mode's).
    selection : {"compact", "paper", "off"} or None
        A selection mode of :mod:`~lrid_analysis.classifiers.protocols`
        (``--selection``): its fixed parameters, grid and search for the
        built-in ``name``; "off" is ``select=False``. None: the registered
        grid and search.
    **params
        Fixed estimator parameters; grid entries of the same name are dropped.

    Returns
    -------
    estimator
        Unfitted, sklearn-compatible.

    Examples
    --------
    >>> est = get_classifier("svm", selection="paper")
    >>> type(est).__name__, est.cv, est.estimator.dual, est.estimator.scale
    ('GridSelection', 5, True, False)
    >>> get_classifier("random_forest", selection="compact").n_estimators
    100
    """
    if selection is not None:
        if selection not in SELECTIONS:
            raise ValueError(f"unknown selection {selection!r}; use one of {', '.join(SELECTIONS)}")
        if selection == "off":
            select = False
        else:
            mode = (COMPACT_SETTINGS if selection == "compact" else PAPER_SETTINGS).get(name)
            if mode is not None:
                params = {**mode["params"], **params}
                if param_grid is None:
                    param_grid = {k: list(v) for k, v in (mode["grid"] or {}).items() if k not in params}
                    select = select and bool(param_grid)
                options = mode.get("search")
                if options is not None and select:
                    return _selected(name, n_checkpoints, n_categorical, random_state, n_jobs, param_grid,
                                     params, options)
    if ":" in name:
        factory, grid, search, who = import_object(name), None, None, repr(name)
        if not callable(factory):
            return clone(factory).set_params(**params)
    else:
        entry = _entry(name)
        factory, grid, search, who = entry.factory, entry.param_grid, entry.search, repr(name)
    if param_grid is not None:
        grid = param_grid
    context = {"n_checkpoints": n_checkpoints, "n_categorical": n_categorical,
               "random_state": random_state, "n_jobs": n_jobs}
    estimator = _build(factory, context, params, who)
    if not select or not grid:
        return estimator
    grid = {k: list(v) for k, v in grid.items() if k not in params}
    _check_grid(estimator, grid, who)
    if search is not None:
        return search(estimator, grid, random_state=random_state, n_jobs=n_jobs)
    if len(ParameterGrid(grid)) <= 1:
        return estimator.set_params(**{k: v[0] for k, v in grid.items()})
    return GridSelection(estimator, grid, n_jobs=n_jobs, random_state=random_state)


def _selected(name, n_checkpoints, n_categorical, random_state, n_jobs, grid, params, options):
    """``name`` with fixed ``params`` in a :class:`GridSelection` over ``grid`` with search ``options``."""
    estimator = get_classifier(name, n_checkpoints=n_checkpoints, n_categorical=n_categorical,
                               random_state=random_state, select=False, n_jobs=n_jobs, **params)
    grid = {k: list(v) for k, v in grid.items() if k not in params}
    _check_grid(estimator, grid, repr(name))
    if len(ParameterGrid(grid)) <= 1:
        return estimator.set_params(**{k: v[0] for k, v in grid.items()})
    return GridSelection(estimator, grid, n_jobs=n_jobs, random_state=random_state, **options)


def resolve_classifier(spec, n_checkpoints=21, n_categorical=3, random_state=0, select=True, n_jobs=1,
                       selection=None, **params):
    """Turn a classifier specification into an unfitted estimator.

    Parameters
    ----------
    spec : str, class, callable or estimator
        A registry name or ``"package.module:Name"`` (see
        :func:`get_classifier`), an estimator class or factory (called with
        the layout arguments it accepts), or an estimator object (cloned,
        ``params`` set on the clone).
    n_checkpoints, n_categorical, random_state, select, n_jobs, selection, **params :
        See :func:`get_classifier` (``selection`` applies to names only).

    Returns
    -------
    estimator
    """
    if isinstance(spec, str):
        return get_classifier(spec, n_checkpoints=n_checkpoints, n_categorical=n_categorical,
                              random_state=random_state, select=select, n_jobs=n_jobs, selection=selection,
                              **params)
    if hasattr(spec, "fit") and not isinstance(spec, type):
        return clone(spec).set_params(**params)
    if callable(spec):
        context = {"n_checkpoints": n_checkpoints, "n_categorical": n_categorical,
                   "random_state": random_state, "n_jobs": n_jobs}
        return _build(spec, context, params, repr(getattr(spec, "__name__", spec)))
    raise TypeError(
        f"cannot make a classifier from {type(spec).__name__}; pass a registry name "
        f"({', '.join(list_classifiers())}), 'package.module:Name', a class or an estimator"
    )


# ---------------------------------------------------------------------------
# Built-ins
# ---------------------------------------------------------------------------


def _random_forest(n_estimators=500, max_features="sqrt", class_weight=None, random_state=0, n_jobs=1, **params):
    """Random forest (Gini); grid selected by out-of-bag accuracy."""
    return RandomForestClassifier(n_estimators=n_estimators, max_features=max_features,
                                  class_weight=class_weight, random_state=random_state, n_jobs=n_jobs, **params)


def _oob_forest_search(estimator, param_grid, random_state=0, n_jobs=1):
    if "n_estimators" not in param_grid:  # fixed by the caller: select the rest at that size
        param_grid = {**param_grid, "n_estimators": [estimator.get_params()["n_estimators"]]}
    return OOBForestSelection(estimator=estimator, param_grid=param_grid, n_jobs=n_jobs,
                              random_state=random_state)


def _builtin(name, factory, grid, description, search=None):
    _REGISTRY[name] = _Entry(name, factory, {k: list(v) for k, v in grid.items()}, description, search, "built-in")


_builtin("random_forest", _random_forest, RANDOM_FOREST_GRID,
         "Random forest; max_features x n_estimators chosen by out-of-bag accuracy", _oob_forest_search)
_builtin("svm", LinearSVMClassifier, SVM_GRID,
         "Linear SVM on standardized features, optional PCA; C x n_components by successive halving")
_builtin("conv1d", Conv1DClassifier, CONV1D_GRID,
         "Conv1D MLP over the checkpoints (PyTorch); architecture and Adam settings by successive halving")
_builtin("xgboost", XGBoostClassifier, XGBOOST_GRID,
         "Gradient-boosted trees (XGBoost); depth x trees x learning rate by successive halving")
_builtin("logistic", LogisticClassifier, LOGISTIC_GRID,
         "Standardized logistic regression; C by successive halving")
