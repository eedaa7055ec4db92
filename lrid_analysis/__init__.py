"""lrid_analysis: identify learning rules from neural-network observables.

The analysis engine of lrid: the tidy Parquet data contract
(:mod:`lrid_analysis.dataset`), the observable catalogue
(:mod:`lrid_analysis.observables`), the public dataset
(:mod:`lrid_analysis.public`), and the experiments of Nayebi et al. (2020).

The names most work needs are importable from the package itself::

    from lrid_analysis import (load_view, CategoryBalancedSplit, HeldOutTask, compare,
                               run_experiment, permutation_importance)

``load_view``
    Read the data as an :class:`~lrid_analysis.dataset.AnalysisView`.
``CategoryBalancedSplit``, ``HeldOutArchitecture``, ``HeldOutCurriculum``, ``HeldOutTask``
    The paper's splitters (scikit-learn cross-validators).
``compare``
    Several ``{name: estimator}`` x several splitters (x datasets) in one
    call: one long table with the split indices kept
    (:func:`lrid_analysis.runner.compare`).
``run_experiment``
    One of the paper's experiments by name; returns a result with
    ``.table``, ``.summary`` and ``.figure()``.
``permutation_importance``
    Drop in test score when a statistic's trajectory is permuted.

These are imported on first use, so ``import lrid_analysis`` stays light and
never imports torch.
"""

__version__ = "0.1.0"

__all__ = ["load_view", "CategoryBalancedSplit", "HeldOutArchitecture", "HeldOutCurriculum", "HeldOutTask",
           "compare", "run_experiment", "permutation_importance", "list_experiments", "__version__"]

_LAZY = {
    "load_view": "dataset",
    "CategoryBalancedSplit": "splits",
    "HeldOutArchitecture": "splits",
    "HeldOutCurriculum": "splits",
    "HeldOutTask": "splits",
    "compare": "runner",
    "permutation_importance": "importance",
}


def run_experiment(name, data=None, **options):
    """Run one of the paper's experiments and return its result.

    Parameters
    ----------
    name : str
        An experiment of :func:`list_experiments` (``heldout_task``,
        ``separability``, ...).
    data : None, "auto", "public", "embedded", path, DataFrame or AnalysisView
        None: ``"auto"`` (the converted public dataset when present, else
        the embedded one).
    **options
        The experiment's ``run`` options: ``classifier`` (names, an
        estimator, a ``{label: estimator}`` dict or (label, estimator)
        pairs), ``observables``, ``n_splits``, ``random_state``, ``n_jobs``,
        ``out`` (nothing is written without it), ``params``, ``filters``,
        ``selection``, ``plot``, ``verbose``, ...

    Returns
    -------
    ExperimentResult
        ``.table`` (one row per condition and split), ``.summary`` (mean ±
        s.e.m. per condition), ``.comparisons``, ``.figure()``.

    Examples
    --------
    >>> result = run_experiment("separability", "embedded", classifier="random_forest", observables="grad",
    ...                         params={"n_estimators": 10}, n_splits=2, filters={"task": "digits"},
    ...                         gradient="gradavg", verbose=False, plot=False)
    >>> result.summary[["grouping", "classifier", "observables", "n_splits"]].values.tolist()
    [['trajectory', 'random_forest', 'grad', 2], ['network', 'random_forest', 'grad', 2]]
    """
    from .experiments import get_experiment

    return get_experiment(name).run(data, **options)


def list_experiments():
    """Names and one-line descriptions of the experiments (see :mod:`lrid_analysis.experiments`).

    Returns
    -------
    dict of str to str
    """
    from .experiments import list_experiments as listing

    return listing()


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
