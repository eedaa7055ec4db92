"""Shared machinery of the experiments: options, data, classifiers, parallel fits, outputs.

Private to :mod:`lrid_analysis.experiments`. An experiment module calls
:func:`prepare` (load and check the data, resolve classifiers and observable
sets) to get a :class:`Context`, builds a list of :class:`Condition` (one
estimator on one feature matrix over a list of train/test splits), runs them
with :meth:`Context.evaluate` and hands its tables and figure to
:meth:`Context.finish`, which prints the summary and writes the files.

Fitting
    Every (condition, split) pair is one task of a single joblib ``Parallel``
    call, so ``n_jobs`` workers stay busy across conditions; each task scores
    its split with :func:`lrid_analysis.evaluate.cross_validate`. Estimators
    are seeded, so results do not depend on ``n_jobs``.
Resuming
    With an output folder, every finished condition is saved under
    ``<out>/parts/`` (:func:`lrid_analysis.evaluate.save_results`), named by
    a digest of its inputs (features, labels, splits, estimator parameters).
    A rerun with the same inputs loads it instead of fitting again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from .. import __version__, evaluate, features, plots, stats
from ..classifiers import get_classifier, list_classifiers, resolve_classifier
from ..dataset import AnalysisView, DatasetError, apply_filters, load_view, resolve_observables, to_view
from ..observables import OBSERVABLE_NAMES
from ..sources import DATA_CHOICES, resolve_data
from ..splits import CategoryBalancedSplit

__all__ = [
    "ExperimentError",
    "ExperimentResult",
    "Condition",
    "Context",
    "COMPACT_SETTINGS",
    "SELECTIONS",
    "prepare",
    "summarize",
    "compare",
    "category_balanced_pairs",
    "build_parser",
    "cli_kwargs",
]

#: Observable set names accepted by ``--observables`` (besides single statistic names).
SET_NAMES = ("weight", "act", "grad", "all", "all45")
#: Hyperparameter selection modes of ``--selection``.
SELECTIONS = ("compact", "paper", "off")

#: ``--selection compact`` (the default): fixed settings or small grids that keep the
#: experiments fast; ``params`` are fixed, ``grid`` (if any) is searched inside ``fit``.
COMPACT_SETTINGS = {
    "random_forest": {"params": {"n_estimators": 100, "max_features": "log2"}, "grid": None},
    # The trajectory features are heavy-tailed and nearly collinear: liblinear's primal
    # solver needs thousands of iterations to converge at any C (25-50 s per fit on the
    # embedded data). 200 iterations cost ~6 s and score within a point of 1,000; C
    # changes the score by about a point between 1 and 500, so it is fixed.
    "svm": {"params": {"C": 50.0, "max_iter": 200, "n_components": None}, "grid": None},
    "conv1d": {"params": {}, "grid": None},
    "xgboost": {"params": {}, "grid": None},
    "logistic": {"params": {}, "grid": {"C": [0.01, 1.0, 100.0]}},
}


class ExperimentError(Exception):
    """A problem the user can fix: shown as one line, no traceback.

    Attributes
    ----------
    exit_code : int
        2 for a bad option or name, 1 for missing or unsuitable data.
    """

    def __init__(self, message, exit_code=2):
        super().__init__(message)
        self.exit_code = exit_code


# ---------------------------------------------------------------------------
# Option parsing (shared by Python and the command line)
# ---------------------------------------------------------------------------

def _tokens(values):
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out = []
    for value in values:
        if isinstance(value, str):
            out.extend(t.strip() for t in value.split(",") if t.strip())
        else:
            out.append(value)
    return out


def observable_sets(spec, default):
    """Resolve ``--observables`` values into labelled lists of statistic names.

    Parameters
    ----------
    spec : None, str, sequence of str or dict
        Set names (``weight``, ``act``, ``grad``, ``all``, ``all45``) give a
        set each; statistic names given together (one comma list) form one
        custom set labelled by the names joined with ``+``. A dict maps
        labels to names. None: ``default``.
    default : sequence of str

    Returns
    -------
    dict of str to list of str
    """
    if spec is None:
        spec = list(default)
    if isinstance(spec, dict):
        out = {}
        for label, names in spec.items():
            try:
                out[str(label)] = resolve_observables(names)
            except DatasetError as err:
                raise ExperimentError(str(err)) from None
        return out
    entries = [spec] if isinstance(spec, str) else list(spec)
    out = {}
    for entry in entries:
        custom = []
        for token in _tokens([entry]):
            if token in SET_NAMES:
                out[token] = resolve_observables(token)
            elif token in OBSERVABLE_NAMES:
                custom.append(token)
            else:
                raise ExperimentError(
                    f"unknown observable set or statistic {token!r}; sets: {', '.join(SET_NAMES)}; "
                    f"statistics: {', '.join(OBSERVABLE_NAMES)}"
                )
        if custom:
            out["+".join(custom)] = custom
    if not out:
        raise ExperimentError(f"no observables given; use sets ({', '.join(SET_NAMES)}) or statistic names")
    return out


def classifier_specs(spec, default):
    """Resolve ``--classifier`` values into ``{label: spec}``.

    Strings are registry names (:func:`lrid_analysis.classifiers.list_classifiers`)
    or ``package.module:Name`` paths, several per comma list; estimator
    objects or classes are labelled by their class name.
    """
    if spec is None:
        spec = list(default)
    out = {}
    for token in _tokens(spec if isinstance(spec, (list, tuple)) else [spec]):
        if isinstance(token, str):
            if ":" not in token and token not in list_classifiers():
                raise ExperimentError(
                    f"unknown classifier {token!r}; registered: {', '.join(list_classifiers())} "
                    "(or give 'package.module:Name')"
                )
            out[token] = token
        else:
            label = token.__name__ if isinstance(token, type) else type(token).__name__
            out[label] = token
    if not out:
        raise ExperimentError(f"no classifier given; registered: {', '.join(list_classifiers())}")
    return out


def _literal(text):
    """A command-line value as a Python value: JSON numbers/lists/bools/null, None/True/False, else str."""
    if text in ("None", "none", "null"):
        return None
    if text in ("True", "true"):
        return True
    if text in ("False", "false"):
        return False
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return text


def parse_params(items, labels):
    """``[CLASSIFIER.]KEY=VALUE`` strings into per-classifier fixed parameters.

    Parameters
    ----------
    items : None, dict or sequence of str
        A dict is either ``{key: value}`` (every classifier) or
        ``{label: {key: value}}``.
    labels : sequence of str
        The classifier labels of the run.

    Returns
    -------
    dict of str to dict
    """
    out = {label: {} for label in labels}
    if not items:
        return out
    if isinstance(items, dict):
        if all(isinstance(v, dict) for v in items.values()) and set(items) <= set(labels):
            for label, params in items.items():
                out[label].update(params)
        else:
            for params in out.values():
                params.update(items)
        return out
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key:
            raise ExperimentError(f"--param {item!r}: expected KEY=VALUE or CLASSIFIER.KEY=VALUE")
        scope, dot, name = key.rpartition(".")
        targets = [scope] if dot and scope in out else list(out)
        if dot and scope not in out:
            raise ExperimentError(f"--param {item!r}: {scope!r} is not a classifier of this run ({', '.join(out)})")
        for label in targets:
            out[label][name if dot else key] = _literal(value)
    return out


def parse_filters(items):
    """``COLUMN=VALUE`` strings (repeatable) into ``{column: [values]}``."""
    if not items:
        return {}
    if isinstance(items, dict):
        return dict(items)
    out = {}
    for item in items:
        column, sep, value = str(item).partition("=")
        if not sep or not column.strip():
            raise ExperimentError(f"--filter {item!r}: expected COLUMN=VALUE, e.g. task=imagenet")
        out.setdefault(column.strip(), []).append(value.strip())
    return out


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

def _union(sets):
    wanted = {name for names in sets.values() for name in names}
    return [name for name in OBSERVABLE_NAMES if name in wanted]


def load_data(data, observables, filters=None, full_access=True):
    """Load the data of a run as an analysis view.

    Parameters
    ----------
    data : None, "auto", "public", "embedded", path, pandas.DataFrame or AnalysisView
    observables : list of str
        Statistics to load.
    filters : dict, optional
        ``{column: values}`` (see :func:`lrid_analysis.dataset.apply_filters`).
    full_access : bool
        Keep only trajectories measured with all units and no noise
        (``unit_fraction == 1``, ``noise_std == 0``).

    Returns
    -------
    view : AnalysisView
    description : str
        Which data, as printed by every run.
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
            view = load_view(path, observables, filters=filters)
    except FileNotFoundError as err:
        raise ExperimentError(str(err), 1) from None
    except DatasetError as err:
        raise ExperimentError(str(err), 2 if "no rows with" in str(err) or "unknown column" in str(err) else 1) from None
    if full_access and {"unit_fraction", "noise_std"} <= set(view.meta.columns):
        keep = ((view.meta["unit_fraction"] == 1.0) & (view.meta["noise_std"] == 0.0)).to_numpy()
        if not keep.any():
            raise ExperimentError(
                "no full-access trajectories (unit_fraction = 1, noise_std = 0) in the selected data", 1
            )
        if not keep.all():
            description += (f"; kept the {int(keep.sum())} full-access trajectories "
                            f"(left out {int((~keep).sum())} with unit subsampling or noise)")
            view = view.subset(keep)
    rules = sorted(set(view.y))
    if len(rules) < 2:
        raise ExperimentError(f"need at least two learning rules to classify; the selected data has {rules}", 1)
    return view, description


def data_line(view, description):
    """One line naming the data and its size."""
    counts = pd.Series(view.y).value_counts().sort_index()
    networks = view.meta["run_id"].nunique() if "run_id" in view.meta.columns else "?"
    rules = ", ".join(f"{rule} {n}" for rule, n in counts.items())
    return f"data: {description}\n      {len(view)} trajectories of {networks} networks ({rules})"


# ---------------------------------------------------------------------------
# Fitting
# ---------------------------------------------------------------------------

@dataclass
class Condition:
    """One estimator on one feature matrix over a list of splits.

    Attributes
    ----------
    key : dict
        Condition columns of the result rows (e.g. classifier, observables).
    estimator : estimator
        Cloned for every split.
    X : ndarray, shape (n_rows, n_features)
    y : ndarray, shape (n_rows,)
    pairs : list of (train_index, test_index)
    fold_names : list of str
    X_test : ndarray, optional
        Features the test rows are scored on (default ``X``).
    labels : list, optional
        Class order of the confusion matrices.
    extra : callable, optional
        ``extra(estimator, X, X_test, y, train, test, split)`` run in the
        worker after the fit (``split`` is the split's number within the
        condition); returns a DataFrame (e.g. importances). Must be
        picklable (a module-level function or a ``functools.partial`` of one).
    """

    key: dict
    estimator: object
    X: np.ndarray
    y: np.ndarray
    pairs: list
    fold_names: list
    X_test: np.ndarray | None = None
    labels: list | None = None
    extra: object = None


def _fit_split(estimator, X, X_test, y, train, test, labels, fold_name, extra, split):
    result = evaluate.cross_validate(estimator, X, y, [(train, test)], n_jobs=1, labels=labels, verbose=False,
                                     X_test=X_test, fold_names=[fold_name], return_estimators=extra is not None)
    row = result.table.iloc[0].to_dict()
    row["confusion"] = json.dumps(np.asarray(result.confusion[0]).tolist())
    frame = None
    if extra is not None:
        frame = extra(result.estimators[0], X, X if X_test is None else X_test, y, train, test, split)
    return row, frame


def _callable_id(fn):
    func = getattr(fn, "func", fn)
    name = f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', type(func).__name__)}"
    keywords = getattr(fn, "keywords", None)
    return name + (json.dumps(keywords, sort_keys=True, default=repr) if keywords else "")


def _digest(condition):
    """A digest of everything a condition's result depends on."""
    h = hashlib.sha1()

    def add(obj):
        if isinstance(obj, np.ndarray):
            arr = np.ascontiguousarray(obj)
            if arr.dtype == object:
                h.update("\x1f".join(map(str, arr.tolist())).encode())
            else:
                h.update(str((arr.dtype.str, arr.shape)).encode())
                h.update(arr.view(np.uint8).reshape(-1).data)
        else:
            h.update(str(obj).encode())
        h.update(b"\x1e")

    add(__version__)
    add(json.dumps(condition.key, sort_keys=True, default=str))
    params = condition.estimator.get_params(deep=True) if hasattr(condition.estimator, "get_params") else {}
    add(type(condition.estimator).__module__ + "." + type(condition.estimator).__qualname__)
    add(json.dumps({k: v for k, v in params.items() if "__" not in k}, sort_keys=True, default=repr))
    add(condition.X)
    add(condition.X if condition.X_test is None else condition.X_test)
    add(np.asarray(condition.y, dtype=object))
    for train, test in condition.pairs:
        add(np.asarray(train, dtype=np.int64))
        add(np.asarray(test, dtype=np.int64))
    add(list(condition.fold_names))
    add(condition.labels)
    add(_callable_id(condition.extra) if condition.extra is not None else None)
    return h.hexdigest()


def _slug(key):
    text = "-".join(f"{v}" for v in key.values()) or "run"
    return re.sub(r"[^A-Za-z0-9_.+=-]+", "_", text)[:80]


class _PartCache:
    """Finished conditions under ``<out>/parts``, named by their input digest."""

    def __init__(self, folder):
        self.folder = Path(folder)

    def _stem(self, condition):
        return f"{_slug(condition.key)}-{_digest(condition)[:16]}"

    def load(self, condition):
        stem = self._stem(condition)
        if not (self.folder / f"{stem}.json").is_file():
            return None
        try:
            table, _ = evaluate.load_results(self.folder, stem)
            extra = None
            if condition.extra is not None:
                extra, _ = evaluate.load_results(self.folder, f"{stem}_extra")
        except (FileNotFoundError, OSError, ValueError):
            return None
        return table, extra

    def save(self, condition, table, extra):
        stem = self._stem(condition)
        params = {"condition": condition.key, "digest": _digest(condition)}
        if extra is not None:  # the extra first: the main JSON marks a finished part
            evaluate.save_results(extra, self.folder, f"{stem}_extra", params)
        evaluate.save_results(table, self.folder, stem, params)


def run_conditions(conditions, n_jobs=1, progress=True, desc="fits", cache_dir=None):
    """Fit and score every (condition, split) pair.

    Parameters
    ----------
    conditions : list of Condition
    n_jobs : int
        joblib workers over all (condition, split) tasks.
    progress : bool
        Show a tqdm bar over the tasks.
    desc : str
        Label of the bar.
    cache_dir : Path, optional
        Folder of finished conditions to reuse and to fill (resume).

    Returns
    -------
    table : pandas.DataFrame
        One row per (condition, split): the condition's key columns, then
        the columns of :func:`lrid_analysis.evaluate.cross_validate`
        (``split`` numbered within the condition) and ``confusion`` (JSON of
        the test confusion matrix, rows actual).
    extras : pandas.DataFrame or None
        The ``extra`` frames with key columns and ``split``.
    """
    cache = _PartCache(cache_dir) if cache_dir is not None else None
    done, todo = {}, []
    for index, condition in enumerate(conditions):
        cached = cache.load(condition) if cache is not None else None
        if cached is not None:
            done[index] = cached
        else:
            todo.append(index)
    tasks = [(i, k) for i in todo for k in range(len(conditions[i].pairs))]
    pending = {i: [None] * len(conditions[i].pairs) for i in todo}
    remaining = {i: len(conditions[i].pairs) for i in todo}
    jobs = (
        delayed(_fit_split)(c.estimator, c.X, c.X_test, c.y, c.pairs[k][0], c.pairs[k][1], c.labels,
                            c.fold_names[k], c.extra, k)
        for c, k in ((conditions[i], k) for i, k in tasks)
    )
    with tqdm(total=len(tasks), desc=desc, disable=not progress or not tasks, unit="fit") as bar:
        outputs = Parallel(n_jobs=n_jobs, return_as="generator")(jobs) if tasks else []
        for (i, k), (row, frame) in zip(tasks, outputs):
            row["split"] = k
            pending[i][k] = (row, frame)
            remaining[i] -= 1
            bar.update()
            if remaining[i] == 0:
                table = pd.DataFrame([r for r, _ in pending[i]])
                frames = [f.assign(split=s) for s, (_, f) in enumerate(pending[i]) if f is not None]
                extra = pd.concat(frames, ignore_index=True) if frames else None
                if cache is not None:
                    cache.save(conditions[i], table, extra)
                done[i] = (table, extra)
                pending[i] = None
    tables, extras = [], []
    for i, condition in enumerate(conditions):
        table, extra = done[i]
        tables.append(_with_key(table, condition.key))
        if extra is not None:
            extras.append(_with_key(extra, condition.key))
    return pd.concat(tables, ignore_index=True), (pd.concat(extras, ignore_index=True) if extras else None)


def _with_key(frame, key):
    frame = frame.copy()
    for position, (column, value) in enumerate(key.items()):
        if column in frame.columns:
            frame = frame.drop(columns=column)
        frame.insert(position, column, value)
    return frame


# ---------------------------------------------------------------------------
# Summaries and comparisons
# ---------------------------------------------------------------------------

def summarize(table, by, value="test_accuracy", name="accuracy"):
    """Mean, s.e.m. and count of a score per condition.

    Returns
    -------
    pandas.DataFrame
        Columns ``by``, ``{name}_mean``, ``{name}_sem`` (``std(ddof=1)/sqrt(n)``),
        ``n_splits``; conditions in first-appearance order.
    """
    rows = []
    for keys, part in table.groupby(list(by), sort=False, dropna=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        values = part[value].to_numpy(dtype=float)
        mean, sem = stats.mean_sem(values)
        rows.append({**dict(zip(by, keys)), f"{name}_mean": float(mean), f"{name}_sem": float(sem),
                     "n_splits": len(values)})
    return pd.DataFrame(rows)


def compare(table, condition_col, within=(), reference=None, value="test_accuracy", split_col="split",
            family=None):
    """:func:`lrid_analysis.stats.compare_conditions` per group, Holm within each group.

    Parameters
    ----------
    table : pandas.DataFrame
        Per-split scores.
    condition_col : str
        Column whose values are compared.
    within : sequence of str
        Columns defining the groups (families); one Holm correction each.
    reference : value, callable or None
        Compare every condition with this value (a callable receives the
        group's key dict); None or a value absent from a group: all pairs.
    value, split_col : str
    family : str, optional
        Name of the comparison family (default ``"<condition_col> vs <reference>"``,
        or ``"<condition_col> pairs"``).

    Returns
    -------
    pandas.DataFrame
        ``family``, ``compared``, the ``within`` columns, then the columns of
        :func:`~lrid_analysis.stats.compare_conditions`. Empty when nothing
        can be compared.
    """
    within = list(within)
    groups = table.groupby(within, sort=False, dropna=False) if within else [((), table)]
    frames = []
    for keys, part in groups:
        keys = keys if isinstance(keys, tuple) else (keys,)
        key = dict(zip(within, keys))
        conditions = list(pd.unique(part[condition_col]))
        if len(conditions) < 2 or part.groupby(condition_col)[split_col].nunique().min() < 2:
            continue
        wanted = reference(key) if callable(reference) else reference
        ref = wanted if wanted in conditions else None
        name = family or (f"{condition_col} vs {ref}" if ref is not None else f"{condition_col} pairs")
        if wanted is not None and ref is None:
            name += f" (no {wanted!r} in the run: all pairs)"
        result = stats.compare_conditions(part, condition_col, value_col=value, split_col=split_col, reference=ref)
        for position, (column, v) in enumerate(key.items()):
            result.insert(position, column, v)
        result.insert(0, "group", ", ".join(f"{c}={v}" for c, v in key.items()))
        result.insert(0, "compared", condition_col)
        result.insert(0, "family", name)
        frames.append(result)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def category_balanced_pairs(view, n_splits, seed):
    """The category-balanced splits (Fig. 2a) of a view, materialised.

    Returns
    -------
    pairs : list of (train, test)
    names : list of str
    """
    splitter = CategoryBalancedSplit(n_splits=n_splits, seed=seed)
    try:
        pairs = list(splitter.split(view.meta))
    except ValueError as err:
        raise ExperimentError(f"cannot draw category-balanced splits: {err}", 1) from None
    return pairs, splitter.fold_names()


# ---------------------------------------------------------------------------
# Context and results
# ---------------------------------------------------------------------------

@dataclass
class ExperimentResult:
    """What an experiment returns.

    Attributes
    ----------
    name : str
    table : pandas.DataFrame
        Per-split scores, one row per (condition, split).
    summary : pandas.DataFrame
        Mean ± s.e.m. per condition.
    comparisons : pandas.DataFrame
        Statistical comparisons (corrected resampled t-tests, Holm-adjusted).
    figure : matplotlib.figure.Figure or None
    params : dict
        Parameters, seeds and classifier settings of the run.
    data : dict
        Description of the data analysed.
    tables : dict of str to pandas.DataFrame
        Further tidy tables (confusion matrices, importances, ...).
    paths : dict of str to Path
        Files written (empty when no output folder was given).
    """

    name: str
    table: pd.DataFrame
    summary: pd.DataFrame
    comparisons: pd.DataFrame
    figure: object
    params: dict
    data: dict
    tables: dict = field(default_factory=dict)
    paths: dict = field(default_factory=dict)

    def to_string(self):
        """The summary as a readable table (accuracies in percent)."""
        return format_summary(self.summary)

    def __str__(self):
        return f"{self.name}\n{self.to_string()}"


def format_summary(summary):
    """A summary table with ``*_mean`` / ``*_sem`` pairs shown as ``mean ± sem`` in percent."""
    frame = summary.copy()
    for column in [c for c in summary.columns if c.endswith("_mean")]:
        stem = column[: -len("_mean")]
        sem_col = f"{stem}_sem"
        mean = frame.pop(column).astype(float)
        sem = frame.pop(sem_col).astype(float) if sem_col in frame.columns else pd.Series(np.nan, index=frame.index)
        frame[stem] = [
            f"{100 * m:5.1f}" + (f" ± {100 * s:4.1f}" if np.isfinite(s) else "") if np.isfinite(m) else "n/a"
            for m, s in zip(mean, sem)
        ]
        frame = frame.rename(columns={stem: f"{stem} (%)"})
    with pd.option_context("display.max_rows", 500, "display.max_columns", 50, "display.width", 200):
        return frame.to_string(index=False)


_SHOWN_COMPARISON_COLUMNS = ("family", "group", "condition_a", "condition_b", "mean_a", "mean_b", "difference",
                              "mean", "p", "p_holm")


def _estimator_settings(estimator):
    params = estimator.get_params(deep=False) if hasattr(estimator, "get_params") else {}
    return {"class": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
            "params": json.loads(json.dumps(params, default=repr))}


@dataclass
class Context:
    """Everything an experiment needs: data, classifiers, observable sets, options."""

    name: str
    view: AnalysisView
    data_description: str
    classifiers: dict
    observable_sets: dict
    n_splits: int
    seed: int
    n_jobs: int
    selection: str
    classifier_params: dict
    out: Path | None
    resume: bool
    verbose: bool
    progress: bool
    plot: bool
    filters: dict
    extra_params: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    @property
    def chance(self):
        """Chance accuracy of balanced classes: 1 / number of rules in the data."""
        return 1.0 / len(set(self.view.y))

    def classifier(self, label, n_checkpoints):
        """A fresh estimator for classifier ``label`` on features of ``n_checkpoints`` checkpoints."""
        spec = self.classifiers[label]
        params = dict(self.classifier_params.get(label, {}))
        try:
            if not isinstance(spec, str):
                estimator = resolve_classifier(spec, n_checkpoints=n_checkpoints, random_state=self.seed,
                                               select=self.selection != "off", n_jobs=1, **params)
            elif self.selection == "compact" and spec in COMPACT_SETTINGS:
                compact = COMPACT_SETTINGS[spec]
                fixed = {**compact["params"], **params}
                grid = {k: v for k, v in (compact["grid"] or {}).items() if k not in fixed}
                estimator = get_classifier(spec, n_checkpoints=n_checkpoints, random_state=self.seed,
                                           select=bool(grid), n_jobs=1, param_grid=grid or None, **fixed)
            else:
                estimator = get_classifier(spec, n_checkpoints=n_checkpoints, random_state=self.seed,
                                           select=self.selection != "off", n_jobs=1, **params)
        except (TypeError, ValueError) as err:
            raise ExperimentError(f"classifier {label!r}: {err}") from None
        self.settings.setdefault(label, _estimator_settings(estimator))
        return estimator

    def features(self, observables, view=None):
        """``(subview, X)``: a view restricted to an observable set and its flat features."""
        view = self.view if view is None else view
        names = self.observable_sets[observables] if isinstance(observables, str) else observables
        try:
            sub = features.select(view, names)
        except ValueError as err:
            raise ExperimentError(str(err), 1) from None
        return sub, features.flatten(sub, check=False)

    def evaluate(self, conditions, desc=None):
        """Run the conditions (see :func:`run_conditions`), resuming from ``<out>/parts``."""
        cache = self.out / "parts" if (self.out is not None and self.resume) else None
        return run_conditions(conditions, n_jobs=self.n_jobs, progress=self.progress, desc=desc or self.name,
                              cache_dir=cache)

    def params(self):
        """The run's parameters for the JSON files."""
        return {
            "experiment": self.name,
            "classifiers": {label: (spec if isinstance(spec, str) else repr(spec))
                            for label, spec in self.classifiers.items()},
            "selection": self.selection,
            "classifier_params": self.classifier_params,
            "classifier_settings": self.settings,
            "observables": self.observable_sets,
            "n_splits": self.n_splits,
            "seed": self.seed,
            "n_jobs": self.n_jobs,
            "filters": self.filters,
            **self.extra_params,
        }

    def data_info(self):
        info = evaluate.describe_view(self.view)
        info["description"] = self.data_description
        info["filters"] = self.filters
        return info

    def finish(self, table, summary, comparisons=None, figure=None, tables=None, seeds=None,
               heading="test accuracy, mean ± s.e.m. over splits"):
        """Print the summary, write the outputs, return an :class:`ExperimentResult`."""
        comparisons = pd.DataFrame() if comparisons is None else comparisons
        tables = dict(tables or {})
        seeds = {"seed": self.seed, "split_seed": self.seed, "classifier_random_state": self.seed, **(seeds or {})}
        params, data = self.params(), self.data_info()
        result = ExperimentResult(self.name, table, summary, comparisons, figure, params, data, tables)
        if self.out is not None:
            out = self.out
            write = [(self.name, table), (f"{self.name}_summary", summary)]
            if not comparisons.empty:
                write.append((f"{self.name}_stats", comparisons))
            write += [(f"{self.name}_{key}", frame) for key, frame in tables.items()]
            for stem, frame in write:
                parquet, json_path = evaluate.save_results(frame, out, stem, params, data=data, seeds=seeds)
                result.paths[stem] = parquet
                result.paths[f"{stem}.json"] = json_path
            if figure is not None:
                result.paths["figure"] = plots.save_figure(figure, out / f"{self.name}.png")
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
                print(f"\nwrote {out}/{self.name}.parquet, .json, _summary, "
                      + ("_stats, " if not comparisons.empty else "")
                      + (f"{self.name}.png" if figure is not None else "(no figure)"))
        return result


def prepare(name, data, *, classifier, observables, default_classifiers, default_observables, n_splits=10, seed=0,
            n_jobs=1, out=None, filters=None, params=None, selection="compact", resume=True, verbose=True,
            progress=None, plot=True, full_access=True, extra_params=None, need_observables=None):
    """Load the data and resolve the options of one experiment run.

    Parameters
    ----------
    name : str
        Experiment name.
    data : see :func:`load_data`
    classifier, observables : see :func:`classifier_specs`, :func:`observable_sets`
    default_classifiers, default_observables : sequence of str
    n_splits, seed, n_jobs : int
    out : str or Path, optional
        Output folder (nothing written when None).
    filters, params : see :func:`parse_filters`, :func:`parse_params`
    selection : {"compact", "paper", "off"}
    resume : bool
        Reuse finished conditions under ``<out>/parts``.
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

    Returns
    -------
    Context
    """
    if selection not in SELECTIONS:
        raise ExperimentError(f"unknown selection {selection!r}; use one of {', '.join(SELECTIONS)}")
    if int(n_splits) < 1:
        raise ExperimentError(f"--splits must be >= 1, got {n_splits}")
    classifiers = classifier_specs(classifier, default_classifiers)
    sets = observable_sets(observables, default_observables)
    filters = parse_filters(filters)
    classifier_params = parse_params(params, list(classifiers))
    load = _union({**sets, "_extra": list(need_observables or [])})
    view, description = load_data(data, load, filters=filters, full_access=full_access)
    if verbose:
        print(data_line(view, description), flush=True)
    ctx = Context(
        name=name, view=view, data_description=description, classifiers=classifiers, observable_sets=sets,
        n_splits=int(n_splits), seed=int(seed), n_jobs=int(n_jobs), selection=selection,
        classifier_params=classifier_params, out=None if out is None else Path(out), resume=bool(resume),
        verbose=bool(verbose), progress=bool(verbose if progress is None else progress), plot=bool(plot),
        filters=filters, extra_params=dict(extra_params or {}),
    )
    for label in classifiers:  # fail early on bad classifier parameters
        ctx.classifier(label, view.X.shape[1])
    return ctx


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

_COMMON_EPILOG = """\
data: --data auto uses the converted public dataset when present, else the embedded one;
      every run prints which data it used. Only full-access trajectories (all units, no
      noise) are analysed, except by unit_noise.
outputs (in --out, default results/<experiment>/): <name>.parquet (per-split scores),
      <name>_summary.parquet (mean ± s.e.m.), <name>_stats.parquet (comparisons), a .json
      next to each (parameters, seeds, versions, data), <name>.png, and parts/ (finished
      conditions, reused when the same run is started again; --no-resume recomputes).
"""


def build_parser(module):
    """The argument parser of one experiment module."""
    defaults = module.DEFAULTS
    parser = argparse.ArgumentParser(
        prog=f"python -m lrid_analysis.experiments {module.NAME}",
        description=f"{module.NAME}: {module.DESCRIPTION}\n\n" + textwrap.dedent(module.DETAILS).strip(),
        epilog="example:\n  " + "\n  ".join(module.EXAMPLES) + "\n\n" + _COMMON_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = parser.add_argument_group("common options")
    common.add_argument("--data", default="auto", metavar="SPEC",
                        help=f"{' | '.join(DATA_CHOICES)} | PATH to tidy Parquet (default: auto)")
    classifier_help = ("registry name or package.module:Name; repeat or comma-separate for several "
                       f"(registered: {', '.join(list_classifiers())}; default: {', '.join(defaults['classifiers'])})")
    common.add_argument("--classifier", action="append", metavar="NAME", help=classifier_help)
    common.add_argument("--observables", action="append", metavar="SETS",
                        help="weight, act, grad, all (24 admissible), all45, or statistic names; comma list "
                             f"(default: {', '.join(defaults['observables'])})")
    common.add_argument("--splits", type=int, default=10, metavar="N",
                        help="number of category-balanced train/test splits (default: 10)")
    common.add_argument("--n-jobs", type=int, default=-1, metavar="N",
                        help="parallel fits (default: -1, all cores); results do not depend on it")
    common.add_argument("--seed", type=int, default=0, help="seed of splits, classifiers and sampling (default: 0)")
    common.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help=f"output folder (default: results/{module.NAME})")
    common.add_argument("--filter", action="append", metavar="COLUMN=VALUE",
                        help="keep rows with this value (repeatable; repeating a column means OR), "
                             "e.g. --filter task=imagenet")
    common.add_argument("--param", action="append", metavar="[CLASSIFIER.]KEY=VALUE",
                        help="fixed classifier parameter, e.g. --param n_estimators=50 or "
                             "--param svm.C=10 (removed from any grid)")
    common.add_argument("--selection", choices=SELECTIONS, default="compact",
                        help="hyperparameters: compact (default; fixed settings or small grids, see the "
                             "README), paper (the paper's grids, selected inside fit; slow), off (fixed "
                             "defaults and --param)")
    if len(defaults["classifiers"]) > 1:
        common.add_argument("--quick", action="store_true",
                            help="only the random forest unless --classifier is given")
    common.add_argument("--no-resume", action="store_true", help="recompute finished conditions")
    common.add_argument("--no-plot", action="store_true", help="do not draw the figure")
    common.add_argument("--quiet", action="store_true", help="no progress bars")
    module.add_arguments(parser)
    return parser


def cli_kwargs(args, name):
    """The keyword arguments of an experiment's ``run`` from the common options."""
    classifier = args.classifier
    if classifier is None and getattr(args, "quick", False):
        classifier = ["random_forest"]
    return {
        "classifier": classifier,
        "observables": args.observables,
        "n_splits": args.splits,
        "seed": args.seed,
        "n_jobs": args.n_jobs,
        "out": args.out if args.out is not None else Path("results") / name,
        "filters": args.filter,
        "params": args.param,
        "selection": args.selection,
        "resume": not args.no_resume,
        "verbose": True,
        "progress": not args.quiet,
        "plot": not args.no_plot,
    }
