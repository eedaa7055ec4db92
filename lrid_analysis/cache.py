"""The fit cache of :mod:`lrid_analysis.runner`: content keys and finished fits on disk.

A finished (estimator, data, split) fit is stored under a key that changes
whenever anything its score depends on changes:

* the unfitted estimator, by content (:func:`joblib.hash` of the object,
  so every parameter, nested estimators included), plus the source code of
  the modules defining its classes and those of its nested estimators and
  callables (:func:`code_fingerprint`): editing a classifier's code makes
  its old fits stale;
* the data: features, test features, labels, groups, class order, and the
  split's train and test rows;
* the versions of lrid, numpy, scikit-learn, torch and xgboost
  (:func:`library_versions`); the code of those libraries is covered by
  their version, not read.

:class:`FitCache` keeps one JSON file per finished fit (the score row) and,
when the fit produced one, a Parquet table of extra results (importances,
...) written first, so a JSON file always marks a complete fit.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import re
import sys
from importlib import metadata as importlib_metadata
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from .atomic import write_atomic, write_text_atomic

__all__ = ["installed_version", "json_default", "library_versions", "code_fingerprint", "estimator_digest", "digest", "FitCache"]

#: Distributions whose code is identified by their version (not read by :func:`code_fingerprint`).
VERSIONED = {"numpy": ("numpy",), "scikit-learn": ("scikit-learn",), "torch": ("torch",),
             "xgboost": ("xgboost", "xgboost-cpu")}
_VERSIONED_MODULES = ("numpy", "sklearn", "torch", "xgboost", "scipy", "joblib", "pandas", "builtins",
                      "functools", "collections", "abc")


def installed_version(*names):
    """The version of the first installed distribution among ``names`` (None if none is).

    Examples
    --------
    >>> installed_version("no-such-distribution-lrid") is None
    True
    """
    for name in names:
        try:
            return importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return None


def json_default(value):
    """``json.dumps(default=...)`` for numpy scalars and arrays, paths and classes (else ``repr``)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (Path, type)):
        return str(value)
    return repr(value)


@functools.lru_cache(maxsize=1)
def library_versions():
    """Versions a cached fit depends on (read from the installed distributions; nothing is imported).

    Returns
    -------
    dict of str to str or None
        ``lrid``, ``numpy``, ``scikit-learn``, ``torch``, ``xgboost``
        (None for a package that is not installed).

    Examples
    --------
    >>> sorted(library_versions())
    ['lrid', 'numpy', 'scikit-learn', 'torch', 'xgboost']
    """
    from . import __version__

    out = {"lrid": __version__}
    out.update({key: installed_version(*names) for key, names in VERSIONED.items()})
    return out


def _module_source_digest(module_name):
    """Hash of a module's source file (re-read when the file changes), or a marker when there is none."""
    module = sys.modules.get(module_name)
    if module is None:
        return "unknown"
    path = getattr(module, "__file__", None)
    if path and str(path).endswith(".py"):
        try:
            with open(path, "rb") as handle:  # read each time: an edited file must change the key
                return hashlib.sha256(handle.read()).hexdigest()
        except OSError:
            pass
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):  # built in, or defined interactively
        return "no-source"
    return hashlib.sha256(source.encode()).hexdigest()


def _code_modules(obj, seen, out):
    """Module names whose code defines ``obj``: its class hierarchy, nested estimators, callables."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, functools.partial):
        _code_modules(obj.func, seen, out)
        for value in list(obj.args) + list(obj.keywords.values()):
            _code_modules(value, seen, out)
        return
    if isinstance(obj, (list, tuple)):
        for value in obj:
            _code_modules(value, seen, out)
        return
    if isinstance(obj, dict):
        for value in obj.values():
            _code_modules(value, seen, out)
        return
    if isinstance(obj, type):
        classes = obj.__mro__
    elif callable(obj) and hasattr(obj, "__module__") and not hasattr(obj, "get_params"):
        classes = ()
        out.add(getattr(obj, "__module__", None) or "")
    else:
        classes = type(obj).__mro__
    for cls in classes:
        out.add(cls.__module__ or "")
    if hasattr(obj, "get_params") and not isinstance(obj, type):
        try:
            params = obj.get_params(deep=False)
        except Exception:  # an estimator whose get_params needs fitting or fails
            params = {}
        for value in params.values():
            _code_modules(value, seen, out)


def code_fingerprint(obj):
    """A hash of the source code of the modules defining ``obj``.

    Covers the modules of every class in the method resolution order of
    ``obj`` (or of ``obj`` itself when it is a class or a function), of
    every estimator, class or callable among its ``get_params(deep=False)``
    values (recursively) and of a :func:`functools.partial`'s function and
    arguments. Modules of numpy, scikit-learn, torch, xgboost (identified
    by their versions) and of the standard library types are left out.

    Parameters
    ----------
    obj : object
        An estimator, a class, a function or a :func:`functools.partial`.

    Returns
    -------
    str
        64 hexadecimal characters.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> code_fingerprint(LogisticRegression()) == code_fingerprint(LogisticRegression(C=2.0))
    True
    """
    modules = set()
    _code_modules(obj, set(), modules)
    own = sorted(m for m in modules if m and m.split(".")[0] not in _VERSIONED_MODULES)
    h = hashlib.sha256()
    for name in own:
        h.update(f"{name}\x1f{_module_source_digest(name)}\x1e".encode())
    return h.hexdigest()


def estimator_digest(estimator):
    """The content key of an unfitted estimator: :func:`joblib.hash` of it plus :func:`code_fingerprint`.

    Parameters
    ----------
    estimator : object
        Any picklable estimator (or callable).

    Returns
    -------
    str
        Equal for equal parameters and code, different otherwise.

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> a = estimator_digest(RandomForestClassifier(n_estimators=10))
    >>> a == estimator_digest(RandomForestClassifier(n_estimators=10))
    True
    >>> a == estimator_digest(RandomForestClassifier(n_estimators=11))
    False
    """
    return digest(joblib.hash(estimator), code_fingerprint(estimator))


def digest(*objects):
    """A stable content hash of numbers, strings, arrays, frames and nested lists or dicts of them.

    Parameters
    ----------
    *objects : object
        Hashed with :func:`joblib.hash` (arrays by their bytes, dtype and shape).

    Returns
    -------
    str
        32 hexadecimal characters.

    Examples
    --------
    >>> import numpy as np
    >>> digest(np.arange(3)) == digest(np.arange(3))
    True
    >>> digest(np.arange(3)) == digest(np.arange(3.0))
    False
    """
    return joblib.hash(objects)


def _slug(key):
    text = "-".join(f"{v}" for v in key.values()) or "fit"
    return re.sub(r"[^A-Za-z0-9_.+=-]+", "_", text)[:60]


class FitCache:
    """Finished fits in a folder, one ``<slug>-<key>.json`` (plus ``.extra.parquet``) each.

    Parameters
    ----------
    folder : str or Path
        Created on the first save.

    Examples
    --------
    >>> import tempfile
    >>> cache = FitCache(tempfile.mkdtemp())
    >>> cache.save("k1", {"classifier": "rf"}, {"test_accuracy": 0.5}, None)
    >>> cache.load("k1", {"classifier": "rf"})
    ({'test_accuracy': 0.5}, None)
    >>> cache.load("k2", {"classifier": "rf"}) is None
    True
    """

    def __init__(self, folder):
        self.folder = Path(folder)

    def _stem(self, key, label):
        return f"{_slug(label)}-{key[:24]}"

    def load(self, key, label):
        """The ``(row, extra)`` saved under ``key``, or None (missing or unreadable).

        Parameters
        ----------
        key : str
            The fit's content key.
        label : dict
            The condition's key columns (only used to name the file).
        """
        stem = self._stem(key, label)
        path = self.folder / f"{stem}.json"
        if not path.is_file():
            return None
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            if document.get("key") != key:
                return None
            extra = None
            if document.get("extra"):
                extra = pd.read_parquet(self.folder / f"{stem}.extra.parquet")
        except (OSError, ValueError):
            return None
        return document["row"], extra

    def save(self, key, label, row, extra):
        """Store one finished fit (the extra table first: the JSON marks a complete fit)."""
        stem = self._stem(key, label)
        if extra is not None:
            write_atomic(self.folder / f"{stem}.extra.parquet", lambda tmp: extra.to_parquet(tmp, index=False))
        document = {"key": key, "condition": label, "row": row, "extra": extra is not None,
                    "versions": library_versions()}
        write_text_atomic(self.folder / f"{stem}.json", json.dumps(document, default=json_default) + "\n")
