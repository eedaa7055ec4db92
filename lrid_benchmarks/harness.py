"""Run classifiers over the benchmark tasks and keep every score in one table.

:func:`run_benchmark` loads the data once, fixes every task's rows and splits
(:mod:`lrid_benchmarks.tasks`, stored under ``<out>/splits/``), checks the
classifiers (:mod:`lrid_benchmarks.compat`), fits and scores each classifier on
each split it has not seen yet, appends the scores to ``<out>/results.parquet``
and writes the leaderboard (:mod:`lrid_benchmarks.leaderboard`).

Results table (:data:`RESULT_COLUMNS`, one row per classifier, task and split)
    ``classifier`` (its label), ``classifier_spec`` (as given),
    ``params_digest`` (:func:`params_digest` of the estimator as built for the
    task), ``params`` (its parameters as JSON), ``selected_params`` (the
    ``best_params_`` chosen inside ``fit``, JSON), ``task``, ``split``,
    ``fold``, ``split_digest``, ``seed``, ``accuracy`` and
    ``balanced_accuracy`` (test rows), ``train_accuracy``, ``fit_seconds``,
    ``predict_seconds``, ``n_train``, ``n_test``, ``n_features``,
    ``data_digest``, ``data``, ``lrid_version``, ``sklearn_version``,
    ``numpy_version``, ``torch_version`` (null unless torch was imported),
    ``python_version``, ``timestamp`` (UTC, ISO 8601).

Fitting and resuming
    Each task's (classifier x split) fits run in :func:`lrid_analysis.runner.run`,
    the loop the experiments use, with its fit cache under ``<out>/cache/``
    (keyed by the estimator's contents and code, the data, the split and
    the library versions): a fit already done is reused (``n_reused``), and
    an interrupted run loses at most the fits in progress. The results table
    is rewritten after every task (temporary file, then rename); a row of
    the same (classifier, params_digest, data_digest, task, split_digest)
    replaces the earlier one. Run one benchmark per output folder at a time.

Timing
    Fits run one after another, so ``fit_seconds`` and ``predict_seconds``
    compare classifiers fairly; ``n_jobs`` goes to the classifiers (trees of
    a forest, candidates of a grid search).
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import sys
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

import lrid_analysis
from lrid_analysis import runner
from lrid_analysis.atomic import write_atomic
from lrid_analysis.cache import FitCache
from lrid_analysis.dataset import AnalysisView, load_view
from lrid_analysis.plugins import (
    ClassifierSpec,
    ClassifierSpecError,
    build_classifier,
    parse_classifier,
)
from lrid_analysis.sources import resolve_data
from lrid_analysis.trajectories import Flatten, for_trajectories

from . import compat, leaderboard
from . import tasks as task_module

__all__ = [
    "REFERENCE",
    "QUICK_SPLITS",
    "QUICK_REFERENCE_PARAMS",
    "RESULT_COLUMNS",
    "RESUME_KEY",
    "CompatibilityError",
    "BenchmarkResult",
    "ResultsStore",
    "params_digest",
    "environment",
    "reference_spec",
    "load_data",
    "check_classifiers",
    "run_benchmark",
]

#: Registry name of the reference classifier.
REFERENCE = "random_forest"
#: Category-balanced splits per task with ``quick=True`` (default 10 otherwise).
QUICK_SPLITS = 3
#: The fast reference of ``quick=True``: a fixed 100-tree forest instead of the
#: out-of-bag selection over the paper's grid (up to 1000 trees).
QUICK_REFERENCE_PARAMS = {"n_estimators": 100, "max_features": "sqrt"}

RESULT_COLUMNS = {
    "classifier": "string", "classifier_spec": "string", "params_digest": "string", "params": "string",
    "selected_params": "string", "task": "string", "split": "Int64", "fold": "string", "split_digest": "string",
    "seed": "Int64", "accuracy": "float64", "balanced_accuracy": "float64", "train_accuracy": "float64",
    "fit_seconds": "float64", "predict_seconds": "float64", "n_train": "Int64", "n_test": "Int64",
    "n_features": "Int64", "data_digest": "string", "data": "string", "lrid_version": "string",
    "sklearn_version": "string", "numpy_version": "string", "torch_version": "string",
    "python_version": "string", "timestamp": "string",
}
#: Columns identifying one finished unit of work.
RESUME_KEY = ("classifier", "params_digest", "data_digest", "task", "split_digest")


class CompatibilityError(ValueError):
    """Some classifiers failed the compatibility check.

    Attributes
    ----------
    reports : list of lrid_benchmarks.compat.CompatibilityReport
    """

    def __init__(self, reports):
        self.reports = list(reports)
        failed = [r for r in self.reports if not r.ok]
        super().__init__("\n".join(r.format() for r in failed))


# ---------------------------------------------------------------------------
# Provenance
# ---------------------------------------------------------------------------

_USER_MODULE = re.compile(r"^_lrid_user_(\w+?)_[0-9a-f]{10}$")


def _class_name(cls):
    module = getattr(cls, "__module__", "") or ""
    match = _USER_MODULE.match(module)
    if match:  # a user's file: name it by the file, not by where it lies
        module = f"file:{match.group(1)}.py"
    return f"{module}.{getattr(cls, '__qualname__', getattr(cls, '__name__', repr(cls)))}"


def _canonical(value):
    """A JSON-able, address-free description of a parameter value."""
    if hasattr(value, "get_params") and not isinstance(value, type):
        params = value.get_params(deep=False)
        return {"__class__": _class_name(type(value)), **{str(k): _canonical(params[k]) for k in sorted(params)}}
    if isinstance(value, dict):
        return {str(k): _canonical(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return {"__array__": value.tolist()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, type) or callable(value):
        return _class_name(value)
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


def _params_json(estimator):
    return json.dumps(_canonical(estimator), sort_keys=True, default=str)


def params_digest(estimator):
    """A stable hash of an estimator's class and parameters.

    The estimator (and every estimator among its parameters) is described by
    its class and ``get_params(deep=False)``, as sorted JSON with memory
    addresses removed; classes from a user's file are named by the file name.

    Returns
    -------
    str
        12 hexadecimal characters.
    """
    return hashlib.sha256(_params_json(estimator).encode()).hexdigest()[:12]


def environment():
    """Versions recorded with every result row.

    Returns
    -------
    dict
        ``lrid_version``, ``sklearn_version``, ``numpy_version``,
        ``torch_version`` (None unless torch is imported), ``python_version``.
    """
    import sklearn

    torch = sys.modules.get("torch")
    return {
        "lrid_version": lrid_analysis.__version__,
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "torch_version": getattr(torch, "__version__", None) if torch is not None else None,
        "python_version": platform.python_version(),
    }


# ---------------------------------------------------------------------------
# Results store
# ---------------------------------------------------------------------------

def _typed(frame):
    frame = frame.copy()
    for column, dtype in RESULT_COLUMNS.items():
        if column not in frame.columns:
            frame[column] = pd.Series([None] * len(frame), dtype=object)
        frame[column] = frame[column].astype(dtype)
    extra = [c for c in frame.columns if c not in RESULT_COLUMNS]
    return frame[list(RESULT_COLUMNS) + extra]


class ResultsStore:
    """The long results table in one Parquet file, appended atomically.

    Parameters
    ----------
    path : str or Path
        ``results.parquet``; read when it exists.

    Raises
    ------
    ValueError
        When an existing file is not a results table (names the file and the
        missing columns).
    """

    def __init__(self, path):
        self.path = Path(path)
        if self.path.is_file():
            try:
                table = pd.read_parquet(self.path)
            except Exception as err:  # pyarrow raises several types
                raise ValueError(f"{self.path}: not a readable results table ({err})") from err
            missing = [c for c in RESUME_KEY if c not in table.columns]
            if missing:
                raise ValueError(f"{self.path}: not a benchmark results table (missing column(s) {missing})")
            self.table = _typed(table)
        else:
            self.table = _typed(pd.DataFrame(columns=list(RESULT_COLUMNS)))
        self._keys = set(self._key_tuples(self.table))

    @staticmethod
    def _key_tuples(frame):
        return map(tuple, frame[list(RESUME_KEY)].astype(str).itertuples(index=False, name=None))

    def __len__(self):
        return len(self.table)

    def has(self, key):
        """Whether the unit ``key`` (values of :data:`RESUME_KEY`) is done."""
        return tuple(str(k) for k in key) in self._keys

    def update(self, rows):
        """Add rows (dicts), replacing rows of the same unit (:data:`RESUME_KEY`); rewrite the file atomically."""
        if not rows:
            return
        new = _typed(pd.DataFrame(rows))
        fresh = set(self._key_tuples(new))
        old = self.table.loc[[k not in fresh for k in self._key_tuples(self.table)]]
        self.table = pd.concat([old, new], ignore_index=True) if len(old) else new
        self._keys.update(fresh)
        write_atomic(self.path, lambda tmp: self.table.to_parquet(tmp, index=False))

    append = update


# ---------------------------------------------------------------------------
# Runner
# ---------------------------------------------------------------------------

@dataclass
class BenchmarkResult:
    """What :func:`run_benchmark` did.

    Attributes
    ----------
    results : pandas.DataFrame
        The rows of this run's classifiers, tasks and splits (earlier and new).
    leaderboard : pandas.DataFrame
        :func:`lrid_benchmarks.leaderboard.build_leaderboard` of ``results``.
    markdown : str
        The leaderboard as markdown.
    notes : dict of str to str
        Task name to why it was skipped.
    failures : list of str
        Classifier fits that raised (the run goes on without them).
    reports : list of CompatibilityReport
    n_new, n_reused : int
        Splits fitted now, and found in the results table.
    paths : dict of str to Path
    data_digest : str
    """

    results: pd.DataFrame
    leaderboard: pd.DataFrame
    markdown: str
    notes: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)
    reports: list = field(default_factory=list)
    n_new: int = 0
    n_reused: int = 0
    paths: dict = field(default_factory=dict)
    data_digest: str = ""


def reference_spec(quick=False):
    """The reference random forest: the paper protocol, or a fixed fast forest with ``quick``."""
    if quick:
        return ClassifierSpec(REFERENCE, "registry", REFERENCE, REFERENCE, dict(QUICK_REFERENCE_PARAMS), False)
    return parse_classifier(REFERENCE)


def load_data(data):
    """Resolve ``--data`` and load all admissible statistics.

    Parameters
    ----------
    data : str, Path or AnalysisView
        ``embedded``, ``public``, ``auto``, a Parquet file or folder, or a view.

    Returns
    -------
    view : AnalysisView
    description : str
    """
    if isinstance(data, AnalysisView):
        return data.select_observables("all"), f"analysis view given in Python ({len(data)} trajectories)"
    path, description = resolve_data(data)
    return load_view(path, observables="all", full_access=False), description  # tasks choose their rows


def _specs(classifiers, quick):
    reference = reference_spec(quick)
    specs = [reference]
    for item in classifiers or []:
        spec = item if isinstance(item, ClassifierSpec) else parse_classifier(item)
        if spec.label == REFERENCE and spec.kind == "registry" and not spec.params:
            continue  # the reference runs anyway
        if any(s.label == spec.label for s in specs):
            raise ClassifierSpecError(
                f"two classifiers are labelled {spec.label!r}; name one with LABEL=SPEC, e.g. 'mine={spec.text}'"
            )
        specs.append(spec)
    return specs


def _bare_instance(spec):
    """An instance of a class the registry refused to build (so the check can say what it lacks)."""
    if spec.kind == "registry" or not isinstance(spec.target, type):
        return None
    try:
        return spec.target(**spec.params)
    except Exception:
        return None


def check_classifiers(specs, seed=0, n_jobs=1):
    """Run the compatibility check on each specification.

    Parameters
    ----------
    specs : sequence of ClassifierSpec or str
    seed : int
    n_jobs : int

    Returns
    -------
    list of CompatibilityReport
        One per classifier; an estimator that cannot even be built gets a
        report with one failed ``build`` check.
    """
    reports = []
    for spec in specs:
        spec = spec if isinstance(spec, ClassifierSpec) else parse_classifier(spec)
        try:
            estimator = build_classifier(spec, random_state=seed, n_jobs=n_jobs, select=False)
        except ClassifierSpecError as err:
            estimator = _bare_instance(spec)
            if estimator is None:
                reports.append(compat.CompatibilityReport(spec.label, [compat.CheckResult("build", "fail",
                                                                                          str(err))]))
                continue
        reports.append(compat.check_classifier(estimator, name=spec.label, random_state=seed))
    return reports


def _failure_lines(failures, prepared):
    """One line per failing (classifier, task): the first error and how many splits failed."""
    lines = {}
    for failure in failures:
        label = failure["classifier"]
        if label not in lines:
            lines[label] = [failure, 0]
        lines[label][1] += 1
    return [f"{label} on {prepared.task.name} split {first['split']} ({first['fold']}): {first['error']}"
            + (f" ({count} of {prepared.n_splits} splits failed)" if count > 1 else "")
            for label, (first, count) in lines.items()]


def _row(spec, estimator, digest, prepared, k, row, n_features, seed, data_digest, description, env):
    return {
        "classifier": spec.label, "classifier_spec": spec.text, "params_digest": digest,
        "params": _params_json(estimator), "selected_params": row["params"], "task": prepared.task.name,
        "split": k, "fold": prepared.fold_names[k], "split_digest": prepared.split_digests[k], "seed": seed,
        "accuracy": row["test_accuracy"], "balanced_accuracy": row["test_balanced_accuracy"],
        "train_accuracy": row["train_accuracy"], "fit_seconds": row["fit_seconds"],
        "predict_seconds": row["predict_seconds"], "n_train": row["n_train"], "n_test": row["n_test"],
        "n_features": n_features, "data_digest": data_digest, "data": description, **env,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _header(description, digest, prepared, specs, n_splits, seed, quick):
    reference = specs[0]
    ref_text = ("fixed 100-tree random forest (--quick)" if quick
                else "random forest with out-of-bag selection over the paper's grid")
    names = ", ".join(s.label for s in specs)
    splits = ", ".join(f"{p.task.name} {p.n_splits}" for p in prepared)
    return (f"Data: {description} (digest {digest}). Classifiers: {names}. Reference: {reference.label} "
            f"({ref_text}). Seed {seed}; category-balanced splits per task: {n_splits}; splits run: {splits}. "
            f"Written {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.")


def run_benchmark(classifiers=(), data="auto", tasks=None, n_splits=None, out="results/classifier_benchmark",
                  n_jobs=1, seed=0, quick=False, check=True, verbose=True, random_state=None):
    """Benchmark classifiers against the random-forest reference.

    Parameters
    ----------
    classifiers : sequence of str or ClassifierSpec
        See :func:`lrid_benchmarks.plugins.parse_classifier`; the reference
        ``random_forest`` always runs first.
    data : str, Path or AnalysisView
        ``embedded``, ``public``, ``auto``, a Parquet path, or a view.
    tasks : sequence of str, optional
        Task names (default all, see :func:`lrid_benchmarks.tasks.list_tasks`).
    n_splits : int, optional
        Category-balanced splits per task; default 10, or
        :data:`QUICK_SPLITS` with ``quick``.
    out : str or Path
        Folder of ``results.parquet``, ``splits/`` and ``leaderboard.{md,csv,png}``.
    n_jobs : int
        Given to the classifiers.
    seed : int
        Seed of the splits, the subsampling and the classifiers.
    quick : bool
        Fewer splits and the fast reference (:data:`QUICK_REFERENCE_PARAMS`).
    check : bool
        Run the compatibility check on the named classifiers first.
    verbose : bool
        Print progress (a tqdm bar over the splits).
    random_state : int, optional
        The name the experiments use for ``seed`` (overrides it when given).

    Returns
    -------
    BenchmarkResult

    Raises
    ------
    CompatibilityError
        When a classifier fails the check (nothing is fitted).
    ClassifierSpecError, FileNotFoundError, ValueError
        For a bad classifier, missing data or a bad task name.

    Examples
    --------
    A nearest-neighbour classifier against the quick reference forest on one
    task of a small part of the embedded data (``check=False`` skips the
    compatibility check):

    >>> import tempfile
    >>> from lrid_analysis.dataset import load_view
    >>> view = load_view("embedded", filters={"task": "digits", "architecture": "alexnet"})
    >>> result = run_benchmark(["knn=sklearn.neighbors:KNeighborsClassifier"], data=view,
    ...                        tasks=["separation_grad"], n_splits=2, out=tempfile.mkdtemp(), quick=True,
    ...                        check=False, verbose=False)
    >>> result.leaderboard[["classifier", "is_reference", "n_splits"]].values.tolist()
    [['random_forest', True, 2], ['knn', False, 2]]
    >>> result.n_new, sorted(result.paths)
    (4, ['cache', 'csv', 'figure', 'markdown', 'results', 'splits'])
    """
    seed = seed if random_state is None else random_state
    n_splits = int(n_splits) if n_splits is not None else (QUICK_SPLITS if quick else 10)
    if n_splits < 2:
        raise ValueError(f"n_splits must be >= 2 (mean ± s.e.m. and the tests need two splits), got {n_splits}")
    chosen = task_module.get_tasks(tasks)
    specs = _specs(classifiers, quick)
    reports = []
    if check and len(specs) > 1:
        reports = check_classifiers(specs[1:], seed=seed, n_jobs=n_jobs)
        if verbose:
            for report in reports:
                print(report.format())
        if not all(r.ok for r in reports):
            raise CompatibilityError(reports)

    view, description = load_data(data)
    digest = task_module.data_digest(view)
    out = Path(out)
    split_store = task_module.SplitStore(out / "splits")
    notes, prepared = {}, []
    for task in chosen:
        try:
            prepared.append(task_module.prepare_task(task, view, n_splits=n_splits, seed=seed, digest=digest,
                                                     store=split_store))
        except task_module.TaskSkipped as err:
            notes[task.name] = f"skipped: {err}"
    if verbose:
        print(f"data: {description}\n      {len(view)} trajectories, digest {digest}")
        for name, note in notes.items():
            print(f"note: {name} {note}")

    store = ResultsStore(out / "results.parquet")
    env = environment()
    run_keys, failures = [], []
    n_new = n_reused = 0
    cache = FitCache(out / "cache")
    for p in prepared:
        built = []
        for spec in specs:
            try:
                built.append((spec, build_classifier(spec, random_state=seed, n_jobs=n_jobs)))
            except ClassifierSpecError as err:
                failures.append(f"{spec.label} on {p.task.name}: {err}")
        if not built:
            continue
        X, y = p.features(view)
        groups = view.meta["run_id"].to_numpy()[p.rows] if "run_id" in view.meta.columns else None
        conditions = [runner.Condition({"classifier": spec.label, "task": p.task.name}, for_trajectories(estimator), X,
                                       y, cv=p.splits, groups=groups, fold_names=p.fold_names, labels=p.labels)
                      for spec, estimator in built]
        n_features = Flatten().fit(X[:1]).n_features_out_  # of the flat layout, as recorded before
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            result = runner.run(conditions, n_jobs=1, cache=cache, progress=verbose, desc=f"benchmark {p.task.name}",
                                errors="skip")
        n_new += result.n_fitted
        n_reused += result.n_reused
        failures += _failure_lines(result.failures, p)
        by_label = {spec.label: (spec, estimator) for spec, estimator in built}
        rows = []
        for _, row in result.table.iterrows():
            spec, estimator = by_label[row["classifier"]]
            k = int(row["split"])
            pdigest = params_digest(estimator)
            if not store.has((spec.label, pdigest, digest, p.task.name, p.split_digests[k])):
                rows.append(_row(spec, estimator, pdigest, p, k, row, n_features, seed, digest, description, env))
        for spec, estimator in built:
            pdigest = params_digest(estimator)
            run_keys += [(spec.label, pdigest, digest, p.task.name, d) for d in p.split_digests]
        store.update(rows)

    keys = set(tuple(str(v) for v in key) for key in run_keys)
    table = store.table
    mask = [tuple(k) in keys for k in ResultsStore._key_tuples(table)]
    results = table.loc[mask].reset_index(drop=True)
    order = [p.task.name for p in prepared]
    chance = {p.task.name: p.chance for p in prepared}
    board = leaderboard.build_leaderboard(results, reference=REFERENCE, task_order=order, chance=chance)
    header = _header(description, digest, prepared, specs, n_splits, seed, quick)
    all_notes = dict(notes)
    for p in prepared:
        if p.task.condition != "full":
            c = p.condition
            all_notes[p.task.name] = (f"measured at unit_fraction {c['unit_fraction']:g}, noise_std "
                                      f"{c['noise_std']:g} (obs_seed {c['obs_seed']})")
    for failure in failures:
        all_notes.setdefault("failed", "")
        all_notes["failed"] = (all_notes["failed"] + "; " if all_notes["failed"] else "") + failure
    written = leaderboard.write_leaderboard(board, out, reference=REFERENCE, header=header, notes=all_notes)
    paths = {"results": store.path, "splits": split_store.root / digest, "cache": cache.folder,
             **{k: v for k, v in written.items() if k != "text"}}
    return BenchmarkResult(results=results, leaderboard=board, markdown=written["text"], notes=notes,
                           failures=failures, reports=reports, n_new=n_new, n_reused=n_reused, paths=paths,
                           data_digest=digest)
