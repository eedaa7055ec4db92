"""One experiment run: resolved options and data (:func:`prepare`), fits, and the finish that writes.

An experiment module calls :func:`prepare` to get a :class:`Context`, builds
a list of :class:`lrid_analysis.runner.Condition`, runs them with
:meth:`Context.evaluate` (one parallel loop, fits cached under
``<out>/parts``) and hands its tables and a figure-drawing function to
:meth:`Context.finish`, which prints the summary and writes the files
(:mod:`lrid_analysis.experiments.outputs`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import evaluate, features, runner
from ..dataset import AnalysisView
from ..splits import GROUPINGS
from ..trajectories import for_trajectories
from .data import data_line, load_data, union
from .options import (
    SELECTIONS,
    ExperimentError,
    build_estimator,
    classifier_specs,
    observable_sets,
    parse_filters,
    parse_params,
)
from .outputs import (
    ExperimentResult,
    check_manifest,
    check_writable,
    parse_formats,
    write_outputs,
)
from .splitting import category_balanced_pairs
from .summaries import format_summary

__all__ = ["RunOptions", "Context", "prepare"]

_SHOWN_COMPARISON_COLUMNS = ("family", "group", "condition_a", "condition_b", "mean_a", "mean_b", "difference",
                              "mean", "p", "p_holm")


@dataclass
class RunOptions:
    """How a run executes and what it writes (not what it computes).

    Attributes
    ----------
    n_jobs : int
    out : Path or None
    resume, overwrite, verbose, progress, plot : bool
    formats : tuple of str
        Figure formats.

    Examples
    --------
    >>> RunOptions(n_jobs=2).formats
    ('png',)
    """

    n_jobs: int = 1
    out: Path | None = None
    resume: bool = True
    overwrite: bool = False
    verbose: bool = True
    progress: bool = True
    plot: bool = True
    formats: tuple = ("png",)


@dataclass
class Context:
    """An experiment's data, classifiers, observable sets and settings.

    Attributes
    ----------
    name : str
    view : AnalysisView
        ``X`` of shape (n_trajectories, n_checkpoints, n_observables).
    data_description : str
    classifiers : dict of str to ClassifierSpec
    observable_sets : dict of str to list of str
    n_splits, random_state : int
    selection : str
    classifier_params : dict of str to dict
    filters : dict
    options : RunOptions
    extra_params : dict
        Experiment-specific parameters recorded in the JSON files.
    derived : dict
        Values an experiment derives from the data during the run (e.g. the
        subsample grid that fits its checkpoints): recorded under
        ``derived`` in the JSON files, not compared by the ``--out``
        manifest check (which runs before they are known).
    grouping : {"trajectory", "network"}
        Unit of the category-balanced splits (see
        :func:`~lrid_analysis.experiments.splitting.category_balanced_pairs`).

    Examples
    --------
    What an experiment module does with it: features, splits, conditions,
    one parallel loop, the finish.

    >>> ctx = prepare("separability", "embedded", classifier="random_forest", observables="grad",
    ...               default_classifiers=["random_forest"], default_observables=["grad"], n_splits=2,
    ...               params={"n_estimators": 5}, filters={"task": "digits"}, verbose=False)
    >>> pairs, names = ctx.balanced_pairs()
    >>> sub, X = ctx.features("grad")
    >>> condition = ctx.condition({"classifier": "random_forest"}, ctx.classifier("random_forest"),
    ...                           X, sub.y, pairs, names)
    >>> table, _ = ctx.evaluate([condition])
    >>> result = ctx.finish(table, table.groupby("classifier", as_index=False)["test_accuracy"].mean())
    >>> result.table.shape[0], list(result.summary.columns)
    (2, ['classifier', 'test_accuracy'])
    """

    name: str
    view: AnalysisView
    data_description: str
    classifiers: dict
    observable_sets: dict
    n_splits: int
    random_state: int
    selection: str
    classifier_params: dict
    filters: dict
    options: RunOptions
    extra_params: dict = field(default_factory=dict)
    derived: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    grouping: str = "trajectory"

    @property
    def plot(self):
        """Whether the run draws its figure (``options.plot``)."""
        return self.options.plot

    @property
    def verbose(self):
        """Whether the run prints its data line and summary (``options.verbose``)."""
        return self.options.verbose

    @property
    def chance(self):
        """Chance accuracy of balanced classes: 1 / number of rules in the data.

        Examples
        --------
        >>> ctx = prepare("separability", "embedded", classifier="random_forest", observables="grad",
        ...               default_classifiers=["random_forest"], default_observables=["grad"], n_splits=2,
        ...               params={"n_estimators": 5}, filters={"task": "digits"}, verbose=False)
        >>> ctx.chance
        0.25
        """
        return 1.0 / len(set(self.view.y))

    def classifier(self, label):
        """A fresh estimator for classifier ``label`` on trajectory features.

        It takes ``X`` of shape (n_rows, n_checkpoints, n_channels)
        (:meth:`features`): a classifier that declares 3-D input (e.g.
        ``conv1d``) as it is, any other behind a
        :class:`~lrid_analysis.trajectories.Flatten` step
        (:func:`~lrid_analysis.trajectories.for_trajectories`). Its class and
        parameters are recorded in ``settings`` (written to the JSON files)
        the first time.

        Parameters
        ----------
        label : str
            A key of ``classifiers``.

        Returns
        -------
        estimator
            Unfitted, with the run's selection mode, parameters and seed.

        Examples
        --------
        >>> ctx = prepare("separability", "embedded", classifier="random_forest", observables="grad",
        ...               default_classifiers=["random_forest"], default_observables=["grad"], n_splits=2,
        ...               params={"n_estimators": 5}, filters={"task": "digits"}, verbose=False)
        >>> est = ctx.classifier("random_forest")
        >>> [name for name, _ in est.steps], est[-1].n_estimators
        (['flatten', 'randomforestclassifier'], 5)
        >>> ctx.settings["random_forest"]["params"]["n_estimators"]
        5
        """
        estimator = build_estimator(self.classifiers[label], self.selection, self.classifier_params.get(label, {}),
                                    None, self.random_state)
        params = estimator.get_params(deep=False) if hasattr(estimator, "get_params") else {}
        self.settings.setdefault(label, {"class": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
                                         "params": json.loads(json.dumps(params, default=repr))})
        return for_trajectories(estimator)

    def features(self, observables, view=None, layout="trajectories"):
        """``(subview, X)``: a view restricted to an observable set and its features.

        Parameters
        ----------
        observables : str or list of str
            A name of ``observable_sets`` or statistic names.
        view : AnalysisView, optional
            Default the run's view.
        layout : {"trajectories", "flat"}
            ``X`` of :func:`lrid_analysis.features.trajectories`, shape
            (n_rows, n_checkpoints, n_observables + 3), what
            :meth:`classifier`'s estimators take; or of
            :func:`lrid_analysis.features.flatten`, shape
            (n_rows, n_observables * n_checkpoints + 3).

        Returns
        -------
        sub : AnalysisView
            The view restricted to the observables.
        X : ndarray
            Its features in ``layout``.

        Raises
        ------
        ExperimentError
            When a statistic has non-finite values.

        Examples
        --------
        >>> ctx = prepare("separability", "embedded", classifier="random_forest", observables="grad",
        ...               default_classifiers=["random_forest"], default_observables=["grad"], n_splits=2,
        ...               params={"n_estimators": 5}, filters={"task": "digits"}, verbose=False)
        >>> sub, X = ctx.features("grad")
        >>> sub.observables == ctx.observable_sets["grad"], X.shape == (len(sub), 21, 3 + 3)
        (True, True)
        >>> ctx.features("grad", layout="flat")[1].shape == (len(sub), 3 * 21 + 3)
        True
        """
        if layout not in ("flat", "trajectories"):
            raise ValueError(f"layout must be 'flat' or 'trajectories', got {layout!r}")
        view = self.view if view is None else view
        names = self.observable_sets[observables] if isinstance(observables, str) else observables
        try:
            sub = features.select(view, names)
        except ValueError as err:
            raise ExperimentError(str(err), 1) from None
        layout_of = features.flatten if layout == "flat" else features.trajectories
        return sub, layout_of(sub, check=False)

    def condition(self, key, estimator, X, y, pairs, names, view=None, **kwargs):
        """A :class:`~lrid_analysis.runner.Condition` whose rows are those of ``view`` (default the run's view).

        The rows' network ids (``run_id``) go with it as ``groups``.

        Parameters
        ----------
        key : dict
            The condition's columns in the result table.
        estimator : estimator
        X : ndarray, shape (n_rows, ...)
        y : array-like, shape (n_rows,)
        pairs : list of (train_index, test_index)
        names : list of str
            Fold names.
        view : AnalysisView, optional
        **kwargs
            Further :class:`~lrid_analysis.runner.Condition` fields.

        Returns
        -------
        lrid_analysis.runner.Condition

        Examples
        --------
        >>> ctx = prepare("separability", "embedded", classifier="random_forest", observables="grad",
        ...               default_classifiers=["random_forest"], default_observables=["grad"], n_splits=2,
        ...               params={"n_estimators": 5}, filters={"task": "digits"}, verbose=False)
        >>> pairs, names = ctx.balanced_pairs()
        >>> sub, X = ctx.features("grad")
        >>> c = ctx.condition({"classifier": "rf"}, ctx.classifier("random_forest"), X, sub.y, pairs, names)
        >>> c.fold_names, c.groups.tolist() == ctx.view.meta["run_id"].tolist()
        (['split0', 'split1'], True)
        """
        view = self.view if view is None else view
        groups = view.meta["run_id"].to_numpy() if "run_id" in view.meta.columns and len(view) == len(y) else None
        return runner.Condition(key, estimator, X, y, cv=pairs, fold_names=names, groups=groups, **kwargs)

    def balanced_pairs(self, view=None):
        """The run's category-balanced splits of ``view`` (default the run's view), in the run's grouping.

        Returns
        -------
        pairs : list of (ndarray, ndarray)
            ``n_splits`` (train_index, test_index) pairs.
        names : list of str

        Examples
        --------
        >>> ctx = prepare("separability", "embedded", classifier="random_forest", observables="grad",
        ...               default_classifiers=["random_forest"], default_observables=["grad"], n_splits=2,
        ...               params={"n_estimators": 5}, filters={"task": "digits"}, verbose=False)
        >>> pairs, names = ctx.balanced_pairs()
        >>> len(pairs), names
        (2, ['split0', 'split1'])
        """
        return category_balanced_pairs(self.view if view is None else view, self.n_splits, self.random_state,
                                       self.grouping)

    def evaluate(self, conditions, desc=None):
        """Run the conditions in one parallel loop, reusing and filling ``<out>/parts``.

        Returns
        -------
        table : pandas.DataFrame
            :func:`lrid_analysis.runner.run`'s table without the split indices.
        extras : pandas.DataFrame or None

        Examples
        --------
        >>> ctx = prepare("separability", "embedded", classifier="random_forest", observables="grad",
        ...               default_classifiers=["random_forest"], default_observables=["grad"], n_splits=2,
        ...               params={"n_estimators": 5}, filters={"task": "digits"}, verbose=False)
        >>> pairs, names = ctx.balanced_pairs()
        >>> sub, X = ctx.features("grad")
        >>> table, extras = ctx.evaluate([ctx.condition({"classifier": "rf"}, ctx.classifier("random_forest"),
        ...                                             X, sub.y, pairs, names)])
        >>> table[["classifier", "split", "fold"]].values.tolist(), extras is None
        ([['rf', 0, 'split0'], ['rf', 1, 'split1']], True)
        """
        o = self.options
        cache = o.out / "parts" if (o.out is not None and o.resume) else None
        try:
            result = runner.run(conditions, n_jobs=o.n_jobs, cache=cache, progress=o.progress,
                                desc=desc or self.name, verbose=o.verbose)
        except ValueError as err:
            if "n_jobs" in str(err):
                raise ExperimentError(f"--n-jobs: {err}") from None
            raise
        table = result.table.drop(columns=["train_confusion", "train_index", "test_index"])
        return table, result.extras

    def params(self):
        """The run's parameters for the JSON files.

        Returns
        -------
        dict
            Experiment, classifiers, selection, parameters, observable sets,
            splits, seed, filters and the experiment's own parameters.

        Examples
        --------
        >>> ctx = prepare("separability", "embedded", classifier="random_forest", observables="grad",
        ...               default_classifiers=["random_forest"], default_observables=["grad"], n_splits=2,
        ...               params={"n_estimators": 5}, filters={"task": "digits"}, verbose=False)
        >>> p = ctx.params()
        >>> p["experiment"], p["classifiers"], p["n_splits"], p["random_state"]
        ('separability', {'random_forest': 'random_forest'}, 2, 0)
        """
        return {
            "experiment": self.name,
            "classifiers": {label: spec.text if isinstance(spec.target, str) or spec.kind == "file"
                            else repr(spec.target) for label, spec in self.classifiers.items()},
            "selection": self.selection,
            "classifier_params": self.classifier_params,
            "classifier_settings": self.settings,
            "observables": self.observable_sets,
            "n_splits": self.n_splits,
            "random_state": self.random_state,
            "n_jobs": self.options.n_jobs,
            "filters": self.filters,
            # recorded when not the default, so that runs made before the option resume unchanged
            **({"grouping": self.grouping} if self.grouping != "trajectory" else {}),
            **self.extra_params,
            **({"derived": self.derived} if self.derived else {}),
        }

    def data_info(self):
        """A description of the run's data for the JSON files.

        Returns
        -------
        dict
            :func:`lrid_analysis.evaluate.describe_view` plus ``description``
            and ``filters``.

        Examples
        --------
        >>> ctx = prepare("separability", "embedded", classifier="random_forest", observables="grad",
        ...               default_classifiers=["random_forest"], default_observables=["grad"], n_splits=2,
        ...               params={"n_estimators": 5}, filters={"task": "digits"}, verbose=False)
        >>> info = ctx.data_info()
        >>> info["n_trajectories"] == len(ctx.view), info["filters"]
        (True, {'task': 'digits'})
        """
        info = evaluate.describe_view(self.view)
        info["description"] = self.data_description
        info["filters"] = self.filters
        return info

    def finish(self, table, summary, comparisons=None, draw=None, tables=None, seeds=None,
               heading="test accuracy, mean ± s.e.m. over splits"):
        """Print the summary, write the outputs, return an :class:`ExperimentResult`.

        Parameters
        ----------
        table : pandas.DataFrame
            Per-split scores.
        summary : pandas.DataFrame
            One row per condition.
        comparisons : pandas.DataFrame, optional
            Statistical comparisons (written as ``<name>_stats``).
        draw : callable, optional
            ``draw() -> Figure``: called now when plotting, else on
            ``result.figure()``.
        tables : dict of str to pandas.DataFrame, optional
            Further tables (``<name>_<key>``).
        seeds : dict, optional
            Seeds recorded besides the run's ``random_state``.
        heading : str
            Title of the printed summary.

        Returns
        -------
        ExperimentResult
            ``paths`` lists the files written (none without ``out``).

        Examples
        --------
        >>> import tempfile
        >>> ctx = prepare("separability", "embedded", classifier="random_forest", observables="grad",
        ...               default_classifiers=["random_forest"], default_observables=["grad"], n_splits=2,
        ...               params={"n_estimators": 5}, filters={"task": "digits"}, verbose=False,
        ...               out=tempfile.mkdtemp())
        >>> pairs, names = ctx.balanced_pairs()
        >>> sub, X = ctx.features("grad")
        >>> table, _ = ctx.evaluate([ctx.condition({"classifier": "rf"}, ctx.classifier("random_forest"), X,
        ...                                        sub.y, pairs, names)])
        >>> result = ctx.finish(table, table.groupby("classifier", as_index=False)["test_accuracy"].mean())
        >>> sorted(p.name for k, p in result.paths.items() if k in ("separability", "report", "manifest"))
        ['README.md', 'manifest.json', 'separability.parquet']
        """
        comparisons = pd.DataFrame() if comparisons is None else comparisons
        seeds = {"seed": self.random_state, "random_state": self.random_state, "split_seed": self.random_state,
                 "classifier_random_state": self.random_state, **(seeds or {})}
        result = ExperimentResult(self.name, table, summary, comparisons, self.params(), self.data_info(),
                                  dict(tables or {}), draw=draw)
        figure = result.figure() if (self.plot and draw is not None) else None
        out = self.options.out
        if out is not None:
            write_outputs(result, out, seeds, figure=figure, formats=self.options.formats)
        if self.verbose:
            print(f"\n{self.name}: {heading}")
            print(format_summary(summary))
            if not comparisons.empty:
                shown = comparisons[[c for c in _SHOWN_COMPARISON_COLUMNS if c in comparisons.columns]]
                print("\ncomparisons (p_holm: Holm-adjusted within each family; details in the _stats files):")
                with pd.option_context("display.max_rows", 200, "display.width", 200,
                                       "display.float_format", "{:.4g}".format):
                    print(shown.to_string(index=False))
            if result.paths:
                figures = ", ".join(p.name for k, p in result.paths.items() if k.startswith("figure."))
                print(f"\nwrote {out}/{self.name}.parquet, .json, _summary, "
                      + ("_stats, " if not comparisons.empty else "")
                      + (figures if figure is not None else "(no figure)") + ", README.md")
        return result


def prepare(name, data, *, classifier, observables, default_classifiers, default_observables, n_splits=10,
            random_state=0, n_jobs=1, out=None, filters=None, params=None, selection="compact", resume=True,
            verbose=True, progress=None, plot=True, full_access=True, extra_params=None, need_observables=None,
            overwrite=False, formats=("png",), seed=None, grouping="trajectory"):
    """Resolve the options of one experiment run and load its data.

    Parameters
    ----------
    name : str
        Experiment name.
    data : see :func:`lrid_analysis.experiments.data.load_data`
    classifier, observables : see :func:`~lrid_analysis.experiments.options.classifier_specs`,
        :func:`~lrid_analysis.experiments.options.observable_sets`
    default_classifiers, default_observables : sequence of str
    n_splits, random_state, n_jobs : int
    out : str or Path, optional
        Output folder (nothing written when None).
    filters, params : see :func:`~lrid_analysis.experiments.options.parse_filters`,
        :func:`~lrid_analysis.experiments.options.parse_params`
    selection : {"compact", "paper", "off"}
    resume : bool
        Reuse finished fits under ``<out>/parts``.
    verbose : bool
        Print the data line and the summary table.
    progress : bool, optional
        Show progress bars (default: ``verbose``).
    plot : bool
    full_access : bool
        Drop trajectories with unit subsampling or noise.
    extra_params : dict, optional
        Experiment-specific parameters recorded in the JSON files.
    need_observables : list of str, optional
        Statistics to load besides the observable sets (e.g. a reference set).
    overwrite : bool
        Replace a run with other settings in ``out`` instead of refusing.
    formats : str or sequence of str
        Figure formats (png, pdf, svg).
    seed : int, optional
        Deprecated alias of ``random_state``.
    grouping : {"trajectory", "network"}
        Unit of the category-balanced splits (``--grouping``).

    Returns
    -------
    Context

    Raises
    ------
    ExperimentError
        For a bad option, classifier or output folder (with its exit code).

    Examples
    --------
    >>> ctx = prepare("separability", "embedded", classifier="random_forest", observables="grad",
    ...               default_classifiers=["random_forest"], default_observables=["grad"], n_splits=2,
    ...               params={"n_estimators": 5}, filters={"task": "digits"}, verbose=False)
    >>> ctx.view.X.shape[1:], list(ctx.classifiers), ctx.observable_sets["grad"][:1], ctx.n_splits
    ((21, 3), ['random_forest'], ['gradavgabs_id'], 2)
    """
    if seed is not None:
        random_state = seed
    if selection not in SELECTIONS:
        raise ExperimentError(f"unknown selection {selection!r}; use one of {', '.join(SELECTIONS)}")
    if int(n_splits) < 1:
        raise ExperimentError(f"--splits must be >= 1, got {n_splits}")
    if int(n_jobs) == 0:
        raise ExperimentError("--n-jobs must not be 0 (use 1, a positive count, or -1 for all cores)")
    if grouping not in GROUPINGS:
        raise ExperimentError(f"unknown grouping {grouping!r}; use one of {', '.join(GROUPINGS)}")
    classifiers = classifier_specs(classifier, default_classifiers)
    sets = observable_sets(observables, default_observables)
    filters = parse_filters(filters)
    classifier_params = parse_params(params, list(classifiers))
    options = RunOptions(n_jobs=int(n_jobs), out=None if out is None else Path(out), resume=bool(resume),
                         overwrite=bool(overwrite), verbose=bool(verbose),
                         progress=bool(verbose if progress is None else progress), plot=bool(plot),
                         formats=parse_formats(formats))
    if options.out is not None:
        check_writable(options.out)
    view, description = load_data(data, union({**sets, "_extra": list(need_observables or [])}), filters=filters,
                                  full_access=full_access)
    if verbose:
        print(data_line(view, description), flush=True)
    ctx = Context(name=name, view=view, data_description=description, classifiers=classifiers, observable_sets=sets,
                  n_splits=int(n_splits), random_state=int(random_state), selection=selection,
                  classifier_params=classifier_params, filters=filters, options=options,
                  extra_params=dict(extra_params or {}), grouping=grouping)
    for label in classifiers:  # fail early on bad classifier parameters
        ctx.classifier(label)
    if options.out is not None:
        check_manifest(options.out, ctx.params(), description, overwrite=options.overwrite)
    return ctx
