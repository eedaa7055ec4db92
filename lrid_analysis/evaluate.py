"""Fit and score a classifier over train/test splits; save results with provenance.

:func:`cross_validate` clones the estimator for every split, fits it on the
train rows (any hyperparameter search happens inside the estimator's
``fit``, on the train rows only), predicts the train and the test rows and
scores both: accuracy, balanced accuracy, the confusion matrix and one-vs-rest
d' per class. Splits run in parallel with joblib; the result does not depend
on ``n_jobs`` as long as the estimator's ``random_state`` is fixed.

Metric definitions
    confusion matrix
        ``C[i, j]`` counts rows of actual class ``labels[i]`` predicted as
        ``labels[j]`` (rows actual, columns predicted), as in the original
        project's ``metrics.get_confusion_matrix``.
    balanced accuracy
        Mean over the classes present in the true labels of the per-class
        recall (scikit-learn's ``balanced_accuracy_score``). The original
        project's ``balanced_accuracy`` was instead a per-class vector
        ``(sensitivity + specificity) / 2``; on the category-balanced splits
        mean recall equals plain accuracy.
    d'
        One-vs-rest from the confusion matrix, as the original
        ``metrics.dprime_confmat``: ``Z(TP / P) - Z(FP / N)`` with ``Z`` the
        standard normal quantile, each ``Z`` clipped to [-5, 5] before the
        difference (so d' lies in [-10, 10]). NaN for a class absent from the
        scored rows.

:func:`save_results` writes a result table to Parquet and a JSON summary
(parameters, seeds, package versions, timestamp, data description) with
atomic writes; :func:`load_results` reads them back, e.g. to skip finished
work when a long job resumes.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import write_atomic
from .cache import installed_version, json_default
from .dataset import AnalysisView
from .metrics import DPRIME_CLIP, balanced_accuracy, confusion_matrix, dprime  # noqa: F401 (re-exported)

__all__ = [
    "EvaluationResult",
    "cross_validate",
    "confusion_matrix",
    "balanced_accuracy",
    "dprime",
    "mean_sem_table",
    "run_metadata",
    "describe_view",
    "save_results",
    "load_results",
]


def mean_sem_table(table, exclude=("split",)):
    """Mean and standard error of the mean of every numeric column.

    The s.e.m. is ``std(ddof=1) / sqrt(n)`` over the rows with a value (NaN
    with fewer than two).

    Returns
    -------
    pandas.DataFrame
        Index: the column names; columns ``mean``, ``sem``, ``n``.
    """
    numeric = table.drop(columns=[c for c in exclude if c in table.columns]).select_dtypes("number")
    numeric = numeric.select_dtypes(exclude="bool").astype(float)
    n = numeric.notna().sum()
    std = numeric.std(ddof=1)
    sem = std / np.sqrt(n.where(n > 1))
    return pd.DataFrame({"mean": numeric.mean(), "sem": sem, "n": n.astype(int)})


@dataclass
class EvaluationResult:
    """Scores of one estimator over a set of splits.

    Attributes
    ----------
    table : pandas.DataFrame, shape (n_splits, n_columns)
        One row per split: ``split`` (0..n_splits-1), ``fold`` (its name),
        ``train_accuracy``, ``test_accuracy``, ``train_balanced_accuracy``,
        ``test_balanced_accuracy``, ``fit_seconds``, ``predict_seconds``
        (prediction of the test rows), ``n_train``, ``n_test``, ``params``
        (JSON of the fitted estimator's ``best_params_``, ``"null"`` when it
        has none), ``dprime_<label>`` (test d' per class) and
        ``train_dprime_<label>``.
    confusion : ndarray of int, shape (n_splits, n_labels, n_labels)
        Test confusion matrices (rows actual, columns predicted).
    train_confusion : ndarray of int, shape (n_splits, n_labels, n_labels)
    labels : list
        Class order of the confusion matrices and d' columns.
    estimators : list or None
        The fitted estimators (``return_estimators=True``).
    predictions : pandas.DataFrame or None
        ``return_predictions=True``: one row per scored row with ``split``,
        ``set`` (``train``/``test``), ``index`` (row of ``X``), ``y_true``,
        ``y_pred``.
    """

    table: pd.DataFrame
    confusion: np.ndarray
    train_confusion: np.ndarray
    labels: list
    estimators: list | None = None
    predictions: pd.DataFrame | None = None
    params: dict = field(default_factory=dict)

    def summary(self):
        """Mean and s.e.m. over splits of every numeric column (see :func:`mean_sem_table`)."""
        return mean_sem_table(self.table)

    def mean_confusion(self, normalize=False, which="test"):
        """The confusion matrix averaged over splits.

        Parameters
        ----------
        normalize : bool
            Divide every row by its total (rows then sum to 1).
        which : {"test", "train"}

        Returns
        -------
        ndarray, shape (n_labels, n_labels)
        """
        cms = self.confusion if which == "test" else self.train_confusion
        mean = cms.mean(axis=0)
        if normalize:
            with np.errstate(divide="ignore", invalid="ignore"):
                mean = mean / mean.sum(axis=1, keepdims=True)
        return mean


def cross_validate(estimator, X, y, splits, n_jobs=1, return_estimators=False, labels=None, verbose=True,
                   *, meta=None, X_test=None, fold_names=None, return_predictions=False, groups=None):
    """Fit a fresh clone of ``estimator`` on every split and score it (one condition of :func:`lrid_analysis.runner.run`).

    Parameters
    ----------
    estimator : scikit-learn classifier
        Cloned per split. Fix its ``random_state`` for reproducible results;
        a hyperparameter search belongs inside its ``fit``.
    X : ndarray, shape (n_rows, ...)
        Features; indexed along the first axis (2-D flat layout or 3-D
        sequences alike).
    y : array-like, shape (n_rows,)
        Class labels.
    splits : iterable of (train_index, test_index), or a splitter
        A splitter (with ``split``; any scikit-learn CV splitter) is called
        as ``splits.split(meta, y, groups)`` (``X`` when ``meta`` is None);
        its ``fold_names`` label the rows.
    n_jobs : int
        Splits run in parallel with joblib (1: in this process).
    return_estimators : bool
        Keep the fitted estimators.
    labels : sequence, optional
        Class order of the confusion matrices and d' columns; default the
        sorted unique values of ``y``.
    verbose : bool
        Show a progress bar over the splits.
    meta : pandas.DataFrame or AnalysisView, optional
        Metadata passed to a splitter.
    X_test : ndarray, shape (n_rows, ...), optional
        Deprecated (a FutureWarning): features to score the test rows on
        (default ``X``). To train on one trajectory window and test on
        another (Fig. 4b), pass the 3-D features of
        :func:`lrid_analysis.features.trajectories` as ``X`` and a
        :class:`~lrid_analysis.trajectories.WindowGeneralizer` as the
        estimator.
    fold_names : sequence of str, optional
        Names of the splits (default: the splitter's, else ``"0", "1", ...``).
    return_predictions : bool
        Keep every train and test prediction in ``result.predictions``.
    groups : array-like, shape (n_rows,), optional
        Group of every row (e.g. the network ``run_id``): given to the
        splitter (``LeaveOneGroupOut`` works) and to ``fit`` when it takes
        ``groups``.

    Returns
    -------
    EvaluationResult

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import LeaveOneGroupOut
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> X = np.array([[0.0], [1.0], [0.1], [1.1], [0.2], [1.2]])
    >>> y = np.array(["a", "b"] * 3)
    >>> result = cross_validate(KNeighborsClassifier(1), X, y, LeaveOneGroupOut(), groups=[0, 0, 1, 1, 2, 2],
    ...                         verbose=False)
    >>> result.table["test_accuracy"].tolist(), result.confusion.shape
    ([1.0, 1.0, 1.0], (3, 2, 2))
    """
    from . import runner

    if isinstance(meta, AnalysisView):
        meta = meta.meta
    if X_test is not None:
        warnings.warn("cross_validate(X_test=...) is deprecated and will be removed: pass "
                      "lrid_analysis.features.trajectories(view) as X and a "
                      "lrid_analysis.trajectories.WindowGeneralizer as the estimator to train on one "
                      "trajectory window and test on another", FutureWarning, stacklevel=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # said above, for the caller's line
        condition = runner.Condition({}, estimator, X, y, cv=splits, groups=groups, fold_names=fold_names,
                                     X_test=X_test, labels=labels, meta=meta)
    result = runner.run([condition], n_jobs=n_jobs, progress=verbose, desc="splits",
                        return_estimators=return_estimators, return_predictions=return_predictions)
    table = result.table.drop(columns=["confusion", "train_confusion", "train_index", "test_index"])
    return EvaluationResult(
        table=table,
        confusion=np.array([json.loads(v) for v in result.table["confusion"]], dtype=np.int64),
        train_confusion=np.array([json.loads(v) for v in result.table["train_confusion"]], dtype=np.int64),
        labels=condition.labels,
        estimators=result.estimators[0] if return_estimators else None,
        predictions=result.predictions,
        params={"estimator": repr(estimator)},
    )


def run_metadata():
    """Provenance of a run: timestamp, Python, platform and package versions.

    Versions come from the installed distributions (nothing is imported);
    a package that is not installed is reported as None.

    Returns
    -------
    dict
        ``timestamp`` (UTC, ISO 8601), ``python``, ``platform``, ``argv``,
        ``packages`` (numpy, pandas, scipy, scikit-learn, xgboost, torch,
        statsmodels, joblib, pyarrow, lrid).
    """
    packages = {
        "numpy": installed_version("numpy"),
        "pandas": installed_version("pandas"),
        "scipy": installed_version("scipy"),
        "scikit-learn": installed_version("scikit-learn"),
        "xgboost": installed_version("xgboost", "xgboost-cpu"),
        "torch": installed_version("torch"),
        "statsmodels": installed_version("statsmodels"),
        "joblib": installed_version("joblib"),
        "pyarrow": installed_version("pyarrow"),
        "lrid": installed_version("lrid"),
    }
    if "torch" in sys.modules:  # the version actually in use
        packages["torch"] = getattr(sys.modules["torch"], "__version__", packages["torch"])
    return {
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "argv": list(sys.argv),
        "packages": packages,
    }


def describe_view(view):
    """A JSON-ready description of an :class:`AnalysisView`.

    Returns
    -------
    dict
        ``n_trajectories``, ``n_checkpoints``, ``observables``, and the
        counts of learning rules, sources, tasks and measurement conditions
        present.
    """
    meta = view.meta

    def counts(column):
        if column not in meta.columns:
            return None
        return {str(k): int(v) for k, v in meta[column].astype(object).value_counts(dropna=False).sort_index().items()}

    conditions = None
    if {"unit_fraction", "noise_std"} <= set(meta.columns):
        grouped = meta.groupby(["unit_fraction", "noise_std"]).size()
        conditions = [{"unit_fraction": float(u), "noise_std": float(s), "n": int(n)} for (u, s), n in grouped.items()]
    return {
        "n_trajectories": int(view.X.shape[0]),
        "n_checkpoints": int(view.X.shape[1]),
        "observables": list(view.observables),
        "learning_rule": counts("learning_rule"),
        "source": counts("source"),
        "task": counts("task"),
        "conditions": conditions,
    }


def _clean_json(value):
    """Replace non-finite floats by None so the file is strict JSON."""
    if isinstance(value, dict):
        return {str(k): _clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean_json(value.tolist())
    if isinstance(value, np.generic):
        return _clean_json(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value




def _find_seeds(params, prefix=""):
    seeds = {}
    for key, value in (params or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            seeds.update(_find_seeds(value, prefix=f"{name}."))
        elif "seed" in str(key).lower() or str(key) == "random_state":
            seeds[name] = value
    return seeds


def save_results(result_table, out_dir, name, params, data=None, seeds=None):
    """Write a result table to Parquet and a JSON summary next to it, atomically.

    Parameters
    ----------
    result_table : EvaluationResult or pandas.DataFrame
        One row per split (or any tidy result table).
    out_dir : str or Path
    name : str
        File stem: ``<out_dir>/<name>.parquet`` and ``<out_dir>/<name>.json``.
    params : dict
        The run's parameters (classifier, observables, splits, ...).
    data : AnalysisView or dict, optional
        The data analysed (a view is described by :func:`describe_view`).
    seeds : dict, optional
        Seeds used; default every ``*seed*`` or ``random_state`` key found in
        ``params`` (nested keys joined by dots).

    Returns
    -------
    parquet_path, json_path : Path

    Notes
    -----
    The JSON holds ``name``, ``params``, ``seeds``, ``data``, ``summary``
    (mean, s.e.m. and n per numeric column), ``run`` (:func:`run_metadata`)
    and, for an :class:`EvaluationResult`, ``labels`` and the per-split test
    and train confusion matrices. Non-finite numbers are written as null.
    """
    if not name or any(sep in str(name) for sep in ("/", "\\")) or str(name).startswith("."):
        raise ValueError(f"invalid result name {name!r}: use a plain file stem")
    out_dir = Path(out_dir)
    if isinstance(result_table, EvaluationResult):
        result = result_table
        table = result.table
    elif isinstance(result_table, pd.DataFrame):
        result, table = None, result_table
    else:
        raise TypeError(f"result_table must be an EvaluationResult or a DataFrame, got {type(result_table).__name__}")
    if isinstance(data, AnalysisView):
        data = describe_view(data)
    summary = mean_sem_table(table)
    document = {
        "name": str(name),
        "params": params,
        "seeds": _find_seeds(params) if seeds is None else seeds,
        "data": data,
        "summary": {metric: row.to_dict() for metric, row in summary.iterrows()},
        "run": run_metadata(),
    }
    if result is not None:
        document["labels"] = [str(label) for label in result.labels]
        document["confusion"] = result.confusion
        document["train_confusion"] = result.train_confusion
    text = json.dumps(_clean_json(document), indent=2, sort_keys=False, default=json_default, allow_nan=False)

    parquet_path = write_atomic(out_dir / f"{name}.parquet", lambda tmp: table.to_parquet(tmp, index=False))

    def write_json(tmp):
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")

    json_path = write_atomic(out_dir / f"{name}.json", write_json)
    return parquet_path, json_path


def load_results(out_dir, name):
    """Read what :func:`save_results` wrote.

    Returns
    -------
    table : pandas.DataFrame
    summary : dict
        The JSON document.

    Raises
    ------
    FileNotFoundError
        Naming the missing file.
    """
    out_dir = Path(out_dir)
    parquet_path, json_path = out_dir / f"{name}.parquet", out_dir / f"{name}.json"
    for path in (parquet_path, json_path):
        if not path.is_file():
            raise FileNotFoundError(f"no saved result {path}")
    with open(json_path, encoding="utf-8") as handle:
        summary = json.load(handle)
    return pd.read_parquet(parquet_path), summary
