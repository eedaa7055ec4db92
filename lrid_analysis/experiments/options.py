"""Options of the experiments, from Python or the command line: names to objects, checked once.

:func:`observable_sets`, :func:`classifier_specs`, :func:`parse_params` and
:func:`parse_filters` turn ``--observables``, ``--classifier``, ``--param``
and ``--filter`` values (or their Python equivalents) into resolved
settings; :func:`build_estimator` builds one classifier for one feature
layout under a ``--selection`` mode. Every problem is an
:class:`ExperimentError` the command line shows as one line.
"""

from __future__ import annotations

import dataclasses
import json

from ..classifiers.protocols import SELECTIONS
from ..observables import OBSERVABLE_SETS, resolve_observables
from ..plugins import (
    ClassifierSpec,
    ClassifierSpecError,
    build_classifier,
    parse_classifier,
)
from ..runner import labelled_estimators

__all__ = ["ExperimentError", "SELECTIONS", "observable_sets", "classifier_specs",
           "parse_params", "parse_filters", "build_estimator", "check_estimator_params"]

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
        Set names (:data:`lrid_analysis.observables.OBSERVABLE_SETS`) give a
        set each; statistic names given together (one comma list) form one
        custom set labelled by the names joined with ``+``. A dict maps
        labels to names. None: ``default``.
    default : sequence of str

    Returns
    -------
    dict of str to list of str

    Examples
    --------
    >>> sets = observable_sets(["grad,actabs_norm"], ("all",))
    >>> list(sets), sets["actabs_norm"]
    (['grad', 'actabs_norm'], ['actabs_norm'])
    """
    if spec is None:
        spec = list(default)
    out = {}
    try:
        if isinstance(spec, dict):
            return {str(label): resolve_observables(names) for label, names in spec.items()}
        for entry in ([spec] if isinstance(spec, str) else list(spec)):
            custom = []
            for token in _tokens([entry]):
                if token in OBSERVABLE_SETS:
                    out[token] = resolve_observables(token)
                else:
                    custom += resolve_observables([token])
            if custom:
                out["+".join(custom)] = custom
    except ValueError as err:
        raise ExperimentError(str(err)) from None
    if not out:
        raise ExperimentError(f"no observables given; use sets ({', '.join(OBSERVABLE_SETS)}) or statistic names")
    return out


def classifier_specs(spec, default):
    """Resolve ``--classifier`` values into ``{label: ClassifierSpec}``.

    Parameters
    ----------
    spec : None, str, estimator, dict, or sequence of those or of (label, estimator) pairs
        Strings are registry names, ``package.module:Name`` or
        ``path/to/file.py:Name`` (optionally ``LABEL=...``), several per comma
        list (see :func:`lrid_analysis.plugins.parse_classifier`); a dict or
        (label, estimator) pairs name estimators, classes or factories; a
        bare object is labelled by its class name. None: ``default``.
    default : sequence of str

    Returns
    -------
    dict of str to ClassifierSpec

    Raises
    ------
    ExperimentError
        For an unknown name, a file that cannot be imported, or two
        classifiers under one label.

    Examples
    --------
    >>> list(classifier_specs("random_forest,svm", ()))
    ['random_forest', 'svm']
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.linear_model import LogisticRegression
    >>> list(classifier_specs({"a": make_pipeline(LogisticRegression()), "b": make_pipeline(LogisticRegression())}, ()))
    ['a', 'b']
    """
    if spec is None:
        spec = list(default)
    if isinstance(spec, dict) or (isinstance(spec, (list, tuple)) and spec
                                  and all(isinstance(t, tuple) for t in spec)):
        items = list(labelled_estimators(spec).items())
    else:
        items = [(None, token) for token in _tokens(spec if isinstance(spec, (list, tuple)) else [spec])]
    out = {}
    for label, token in items:
        try:
            parsed = parse_classifier(token)
        except ClassifierSpecError as err:
            raise ExperimentError(str(err)) from None
        if label is not None:
            parsed = dataclasses.replace(parsed, label=label)
        if parsed.label in out and isinstance(token, str) and out[parsed.label].text == parsed.text:
            continue  # the same name twice
        if parsed.label in out:
            raise ExperimentError(f"two classifiers are labelled {parsed.label!r}; pass a dict {{label: estimator}}, "
                                  "(label, estimator) pairs, or LABEL=SPEC on the command line")
        out[parsed.label] = parsed
    if not out:
        raise ExperimentError("no classifier given")
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

    Examples
    --------
    >>> parse_params(["n_estimators=10", "svm.C=0.5"], ["random_forest", "svm"])
    {'random_forest': {'n_estimators': 10}, 'svm': {'n_estimators': 10, 'C': 0.5}}
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
    """``COLUMN=VALUE`` strings (repeatable) into ``{column: [values]}``.

    Examples
    --------
    >>> parse_filters(["task=a", "task=b", "batch_size=128"])
    {'task': ['a', 'b'], 'batch_size': ['128']}
    """
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


def check_estimator_params(estimator, label):
    """Validate the parameters of an estimator and of every estimator inside it, before any fit.

    Uses scikit-learn's parameter constraints where an estimator declares
    them (``n_estimators=-5`` is refused here rather than minutes later in a
    worker).

    Raises
    ------
    ExperimentError
        Naming the classifier and the bad value.
    """
    seen = [estimator]
    if hasattr(estimator, "get_params"):
        seen += [v for v in estimator.get_params(deep=True).values() if hasattr(v, "get_params")
                 and not isinstance(v, type)]
    for est in seen:
        validate = getattr(est, "_validate_params", None)
        if validate is None or not hasattr(type(est), "_parameter_constraints"):
            continue
        try:
            validate()
        except (TypeError, ValueError) as err:
            raise ExperimentError(f"classifier {label!r}: {err}") from None


def build_estimator(spec, selection, params, n_checkpoints=None, random_state=0):
    """An unfitted estimator of one classifier.

    Parameters
    ----------
    spec : ClassifierSpec
    selection : {"compact", "paper", "off"}
        The selection mode of :mod:`lrid_analysis.classifiers.protocols`
        (fixed settings and grids of the built-in classifiers, searched inside
        ``fit``); ``off``: fixed defaults.
    params : dict
        Fixed parameters (removed from any grid).
    n_checkpoints : int, optional
        Checkpoints of flat features, for a classifier that reads them from
        its parameters (``conv1d``); None (trajectory features, which carry
        it): the registry's default.
    random_state : int

    Returns
    -------
    estimator

    Examples
    --------
    >>> from lrid_analysis.plugins import parse_classifier
    >>> est = build_estimator(parse_classifier("random_forest"), "compact", {"n_estimators": 5}, 21, 0)
    >>> est.get_params()["n_estimators"]
    5
    """
    if not isinstance(spec, ClassifierSpec):
        spec = parse_classifier(spec)
    try:
        spec = dataclasses.replace(spec, params={**spec.params, **params})
        layout = {} if n_checkpoints is None else {"n_checkpoints": int(n_checkpoints)}
        estimator = build_classifier(spec, random_state=random_state, n_jobs=1, select=selection != "off",
                                     selection=selection, **layout)
    except (ClassifierSpecError, TypeError, ValueError) as err:
        text = str(err)
        raise ExperimentError(text if text.startswith("classifier ") else f"classifier {spec.label!r}: {text}") \
            from None
    check_estimator_params(estimator, spec.label)
    return estimator
