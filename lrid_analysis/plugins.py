"""Turn ``--classifier`` values into scikit-learn estimators (experiments and benchmark alike).

A classifier can be named four ways:

``NAME``
    A name of the registry :func:`lrid_analysis.classifiers.list_classifiers`:
    the built-ins, classifiers added in code with
    :func:`~lrid_analysis.classifiers.register_classifier`, and those of
    installed packages declaring an entry point in the group
    ``lrid.classifiers``.
``package.module:Object``
    An importable class, factory function or estimator object.
``path/to/file.py:Object``
    A class, factory or estimator object defined in a Python file of your
    own (imported under a private module name; the file's folder is on
    ``sys.path`` while it is imported, so it may import its neighbours).
``LABEL=any of the above``
    The same, named ``LABEL`` in the results and the leaderboard.

A class or factory receives, of ``n_checkpoints``, ``n_categorical``,
``random_state`` and ``n_jobs``, the arguments it accepts (see
:func:`lrid_analysis.classifiers.resolve_classifier`); an estimator object is
cloned.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lrid_analysis import classifiers as registry

__all__ = ["ClassifierSpecError", "ClassifierSpec", "parse_classifier", "load_object_from_file", "build_classifier"]

_LABEL = re.compile(r"^[A-Za-z_][\w.\-]*$")
_IDENTIFIER_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


class ClassifierSpecError(ValueError):
    """A ``--classifier`` value that cannot be turned into an estimator."""


@dataclass(frozen=True)
class ClassifierSpec:
    """A parsed classifier specification.

    Attributes
    ----------
    label : str
        Name used in the results table and the leaderboard.
    kind : {"registry", "module", "file", "object"}
        How the classifier was named.
    target : object
        The registry name, the ``"package.module:Object"`` string, or the
        object loaded from a file (class, factory or estimator).
    text : str
        The specification as given.
    params : dict
        Fixed parameters passed to the factory (or set on the estimator).
    select : bool
        Let registered classifiers with a grid select their hyperparameters
        inside ``fit`` (see :func:`lrid_analysis.classifiers.get_classifier`).
    """

    label: str
    kind: str
    target: object
    text: str
    params: dict = field(default_factory=dict)
    select: bool = True


def _module_name(path):
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    stem = re.sub(r"\W", "_", path.stem)
    return f"_lrid_user_{stem}_{digest}"


def load_object_from_file(path, name):
    """Import a Python file and return its attribute ``name``.

    Parameters
    ----------
    path : str or Path
        A ``.py`` file.
    name : str
        Attribute to return (dots reach nested attributes).

    Returns
    -------
    object

    Raises
    ------
    ClassifierSpecError
        When the file is missing, fails to import, or lacks ``name`` (the
        message lists the classes and functions it has).
    """
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise ClassifierSpecError(f"classifier file {str(path)!r} does not exist")
    module_name = _module_name(path)
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ClassifierSpecError(f"cannot import {str(path)!r} as a Python module (is it a .py file?)")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        folder = str(path.parent)
        added = folder not in sys.path
        if added:
            sys.path.insert(0, folder)
        try:
            spec.loader.exec_module(module)
        except Exception as err:
            del sys.modules[module_name]
            raise ClassifierSpecError(f"importing {str(path)!r} failed: {type(err).__name__}: {err}") from err
        finally:
            if added and folder in sys.path:
                sys.path.remove(folder)
        # Worker processes (joblib) cannot import this private module by name:
        # let joblib's cloudpickle send its classes and functions by value.
        try:
            from joblib.externals import cloudpickle

            cloudpickle.register_pickle_by_value(module)
        except (ImportError, AttributeError, ValueError):  # pragma: no cover - old joblib
            pass
    obj = module
    for part in name.split("."):
        if not hasattr(obj, part):
            public = sorted(k for k, v in vars(module).items()
                            if not k.startswith("_") and callable(v) and getattr(v, "__module__", None) == module_name)
            raise ClassifierSpecError(
                f"{str(path)!r} has no attribute {name!r}; it defines: {', '.join(public) or 'no classes or functions'}"
            )
        obj = getattr(obj, part)
    return obj


def _import_object(module_name, attr, text):
    try:
        return registry.import_object(f"{module_name}:{attr}")
    except ValueError as err:
        raise ClassifierSpecError(f"classifier {text!r}: {err}") from err
    except Exception as err:  # the module raised while being imported
        raise ClassifierSpecError(f"classifier {text!r}: importing {module_name!r} failed: "
                                  f"{type(err).__name__}: {err}") from err


def parse_classifier(text, params=None, select=True):
    """Parse a ``--classifier`` value.

    Parameters
    ----------
    text : str or object
        ``NAME``, ``package.module:Object``, ``path/file.py:Object``, each
        optionally prefixed by ``LABEL=``; or a class, factory or estimator
        object (labelled by its class name).
    params : dict, optional
        Fixed parameters (see :class:`ClassifierSpec`).
    select : bool

    Returns
    -------
    ClassifierSpec

    Raises
    ------
    ClassifierSpecError
        For an unknown registry name (listing the registered ones), a
        malformed path, a missing file or attribute, or a module that
        raises while it is imported (its exception in one line).

    Examples
    --------
    >>> spec = parse_classifier("mine=sklearn.tree:DecisionTreeClassifier")
    >>> spec.label, spec.kind, spec.target.__name__
    ('mine', 'module', 'DecisionTreeClassifier')
    >>> parse_classifier("random_forest").kind
    'registry'
    """
    params = dict(params or {})
    if not isinstance(text, str):
        label = getattr(text, "__name__", None) or type(text).__name__
        return ClassifierSpec(label, "object", text, label, params, select)
    text = text.strip()
    if not text:
        raise ClassifierSpecError("empty --classifier value")
    label, body = None, text
    head, eq, rest = text.partition("=")
    if eq and _LABEL.match(head) and rest:
        label, body = head, rest.strip()
    if ":" in body:
        location, _, attr = body.rpartition(":")
        if not location or not attr or not _IDENTIFIER_PATH.match(attr):
            raise ClassifierSpecError(
                f"classifier {text!r}: expected 'package.module:Object' or 'path/to/file.py:Object'"
            )
        looks_like_file = location.endswith(".py") or "/" in location or "\\" in location or Path(location).is_file()
        if looks_like_file:
            obj = load_object_from_file(location, attr)
            return ClassifierSpec(label or f"{Path(location).name}:{attr}", "file", obj, text, params, select)
        if not _IDENTIFIER_PATH.match(location):
            raise ClassifierSpecError(f"classifier {text!r}: {location!r} is neither a module path nor a .py file")
        obj = _import_object(location, attr, text)
        return ClassifierSpec(label or body, "module", obj, text, params, select)
    names = registry.list_classifiers()
    if body not in names:
        raise ClassifierSpecError(
            f"unknown classifier {body!r}; registered: {', '.join(names)}. Name your own as "
            "'package.module:Class' or 'path/to/file.py:Class'"
        )
    return ClassifierSpec(label or body, "registry", body, text, params, select)


def build_classifier(spec, n_checkpoints=21, n_categorical=3, random_state=0, n_jobs=1, select=None, selection=None):
    """An unfitted estimator for one feature layout.

    Parameters
    ----------
    spec : ClassifierSpec or str
    n_checkpoints, n_categorical : int
        The flat layout of the task (passed to factories that accept them).
    random_state : int
    n_jobs : int
    select : bool, optional
        Override ``spec.select`` (the compatibility check builds with
        ``select=False``: the estimator itself, without a grid search).
    selection : {"compact", "paper", "off"}, optional
        Selection mode of a registered built-in classifier
        (:mod:`lrid_analysis.classifiers.protocols`).

    Returns
    -------
    estimator
    """
    if not isinstance(spec, ClassifierSpec):
        spec = parse_classifier(spec)
    select = spec.select if select is None else select
    common = dict(n_checkpoints=n_checkpoints, n_categorical=n_categorical, random_state=random_state,
                  n_jobs=n_jobs, select=select, **spec.params)
    try:
        if spec.kind == "registry":
            return registry.get_classifier(spec.target, selection=selection, **common)
        return registry.resolve_classifier(spec.target, **common)
    except (TypeError, ValueError) as err:
        text = str(err)
        raise ClassifierSpecError(text if text.startswith("classifier ") else f"classifier {spec.label!r}: {text}") \
            from err
