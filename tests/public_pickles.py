"""Schema-identical synthetic ``dataset.pkl`` files for the public-dataset tests.

Shared by tests/test_public.py and tests/test_download.py (imported as a
sibling module; pytest puts the tests folder on ``sys.path``).
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd

from lrid_analysis.dataset import LAYER_POSITIONS
from lrid_analysis.observables import ADMISSIBLE_NAMES, OBSERVABLE_NAMES
from lrid_analysis.synthetic import public_meta

_META_FIELDS = ["task", "start_idxs", "learning_rule", "dataset_seed", "end_idxs", "model_seed",
                "architecture", "batch_size", "layer_name"]
_TEXT_FIELDS = ("task", "learning_rule", "architecture", "layer_name")


def synthetic_public_dict(meta=None, seed=0, text="unicode", x_dtype=np.float32):
    """A dict shaped like the public pickle, built from public meta rows.

    Parameters
    ----------
    meta : pandas.DataFrame, optional
        Rows of :func:`lrid_analysis.synthetic.public_meta` (all when None).
    seed : int
    text : {"unicode", "bytes"}
        ``"bytes"`` mimics a Python 2 pickle read in Python 3: text arrays
        with ``S`` dtype and bytes dict keys.
    x_dtype : numpy dtype of X.

    Returns
    -------
    data : dict
    """
    meta = public_meta() if meta is None else meta
    rng = np.random.default_rng(seed)
    n = len(meta)
    X = rng.normal(size=(n, 21, 45)).astype(x_dtype)
    inadmissible = [i for i, name in enumerate(OBSERVABLE_NAMES) if name not in ADMISSIBLE_NAMES]
    blowups = rng.random((n, 21, len(inadmissible)))
    block = X[:, :, inadmissible]
    block[blowups < 0.02] = np.inf
    block[blowups > 0.99] = -np.inf
    X[:, :, inadmissible] = block
    position = meta["layer_position_inferred"].to_numpy(dtype=object)
    onehot = (position[:, None] == np.array(LAYER_POSITIONS, dtype=object)[None, :]).astype(np.float64)
    X_cat = np.repeat(onehot[:, None, :], 21, axis=1)

    def text_array(values):
        values = np.asarray(values, dtype=str)
        return values.astype("S") if text == "bytes" else values

    def seeds(values):
        out = np.empty(len(values), dtype=object)
        out[:] = [None if pd.isna(v) else int(v) for v in values]
        return out

    arrays = []
    for field in _META_FIELDS:
        values = meta[field].to_numpy()
        if field in _TEXT_FIELDS:
            arrays.append(text_array(values))
        elif field.endswith("_seed"):
            arrays.append(seeds(meta[field]))
        else:
            arrays.append(values.astype(np.int64))
    record = np.rec.fromarrays(arrays, names=_META_FIELDS)
    data = {
        "X": X,
        "X_cat": X_cat,
        "Y": text_array(meta["learning_rule"].to_numpy()),
        "obs_keys": text_array(list(OBSERVABLE_NAMES)),
        "meta": record,
    }
    if text == "bytes":
        data = {key.encode(): value for key, value in data.items()}
    return data


_PY2_MODULES = {
    "numpy._core.multiarray": "numpy.core.multiarray",
    "numpy.rec": "numpy.core.records",
    "builtins": "__builtin__",
    "copyreg": "copy_reg",
}


class Py2StylePickler(pickle._Pickler):
    """A pickler that writes what Python 2.7 with numpy 1.x wrote.

    bytes become Python 2 ``str`` opcodes (``STRING`` / ``SHORT_BINSTRING``,
    read back as text with ``encoding="latin1"``) instead of Python 3's
    ``_codecs.encode`` calls, and globals use the Python 2 / numpy 1.x module
    names (``numpy.core.multiarray``, ``copy_reg``).
    """

    dispatch = dict(pickle._Pickler.dispatch)

    def save_bytes(self, obj):
        if self.proto < 1:
            self.write(pickle.STRING + repr(obj)[1:].encode("ascii") + b"\n")
        elif len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + len(obj).to_bytes(4, "little") + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes

    def save_global(self, obj, name=None):
        module = getattr(obj, "__module__", None)
        name = name or obj.__qualname__
        module = _PY2_MODULES.get(module, module)
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode("ascii"))
        self.memoize(obj)

    dispatch[type] = save_global


def write_pickle(data, path, style="py3", protocol=2):
    """Write ``data`` with ``pickle.dump`` (``style="py3"``) or :class:`Py2StylePickler`."""
    with open(path, "wb") as file:
        if style == "py3":
            pickle.dump(data, file, protocol=protocol)
        else:
            Py2StylePickler(file, protocol=protocol).dump(data)
    return path


def meta_slice(n=300, seed=0):
    """``n`` public meta rows picked at random, covering several architectures, in shuffled order."""
    meta = public_meta()
    rng = np.random.default_rng(seed)
    return meta.iloc[rng.choice(len(meta), size=n, replace=False)].reset_index(drop=True)
