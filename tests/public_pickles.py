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


# ---------------------------------------------------------------------------
# hand-assembled hostile pickles (protocol 2 opcodes)

P = pickle


def glob(module, name):
    """``GLOBAL module name``: push an importable object."""
    return P.GLOBAL + f"{module}\n{name}\n".encode()


def text(value):
    """``BINUNICODE``: push a str."""
    data = value.encode()
    return P.BINUNICODE + len(data).to_bytes(4, "little") + data


def raw(value):
    """``BINBYTES``: push bytes."""
    return P.BINBYTES + len(value).to_bytes(4, "little") + value


def integer(value):
    """``LONG1``: push an int of any size."""
    data = value.to_bytes((value.bit_length() + 8) // 8 or 1, "little", signed=True)
    return P.LONG1 + bytes([len(data)]) + data


def tup(*items):
    """``MARK items TUPLE``."""
    return P.MARK + b"".join(items) + P.TUPLE


def call(func, *args):
    """``func args REDUCE``: func(*args)."""
    return func + tup(*args) + P.REDUCE


def program(*body):
    """A protocol-2 pickle: ``PROTO 2 body STOP``."""
    return P.PROTO + b"\x02" + b"".join(body) + P.STOP


def dtype_op(code, state=None):
    """``numpy.dtype(code, False, True)``, then ``BUILD state`` when given."""
    out = call(glob("numpy", "dtype"), text(code), P.NEWFALSE, P.NEWTRUE)
    return out + (state + P.BUILD if state is not None else b"")


def array_op(shape, dtype, data):
    """``_reconstruct(ndarray, (0,), b'b')``, then ``BUILD (1, shape, dtype, False, data)``."""
    return (call(glob("numpy.core.multiarray", "_reconstruct"), glob("numpy", "ndarray"), tup(integer(0)), raw(b"b"))
            + tup(integer(1), tup(*map(integer, shape)), dtype, P.NEWFALSE, data) + P.BUILD)


def object_field_state(flags):
    """State of a structured dtype of one object field 'o' (8 bytes) that declares ``flags``."""
    return tup(integer(3), text("|"), P.NONE, tup(text("o")),
               P.EMPTY_DICT + text("o") + tup(dtype_op("O8"), integer(0)) + P.SETITEM,
               integer(8), integer(1), integer(flags))


def crafted_pickles():
    """Pickles that make numpy read Python object pointers from file bytes (a SIGSEGV on loading/using).

    Returns
    -------
    dict of str to bytes
    """
    pointer = raw(b"\x41" * 8)
    return {
        # issue 9 item 1: a structured dtype whose field is "object" while its flags say "no objects"
        "flags say no objects": program(array_op((1,), dtype_op("V8", object_field_state(0)), pointer)),
        # a numpy scalar of an object-holding record, filled from raw bytes (numpy itself writes these)
        "object record scalar": program(
            call(glob("numpy.core.multiarray", "scalar"), dtype_op("V8", object_field_state(27)), pointer)),
        # dtype V8 used by an array, then rebuilt as an object field: the array's bytes become pointers
        "dtype rebuilt after use": program(
            dtype_op("V8") + P.BINPUT + b"\x01" + P.POP
            + array_op((1,), P.BINGET + b"\x01", pointer) + P.BINPUT + b"\x02" + P.POP
            + P.BINGET + b"\x01" + object_field_state(27) + P.BUILD + P.POP + P.BINGET + b"\x02"),
        # a fresh dtype V8 made the field of a record, the record's array filled, then V8 rebuilt as objects
        "field dtype rebuilt after use": program(
            dtype_op("V8") + P.BINPUT + b"\x01" + P.POP
            + array_op((1,), dtype_op("V8", tup(integer(3), text("|"), P.NONE, tup(text("a")),
                                                P.EMPTY_DICT + text("a") + tup(P.BINGET + b"\x01", integer(0))
                                                + P.SETITEM, integer(8), integer(1), integer(0x10))), pointer)
            + P.BINPUT + b"\x02" + P.POP
            + P.BINGET + b"\x01" + object_field_state(27) + P.BUILD + P.POP + P.BINGET + b"\x02"),
        # protocol 5's buffer path with an object dtype claiming no objects
        "frombuffer object dtype": program(call(glob("numpy.core.numeric", "_frombuffer"), raw(b"\x41" * 8),
                                                dtype_op("V8", object_field_state(0)), tup(integer(1)), text("C"))),
    }


class Call:
    """An object that pickles as ``func(*args)`` (to write a ``REDUCE`` of any admitted global)."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _zero_stride(shape, item, last_stride=0):
    """``numpy.ndarray(shape, dtype, buffer, 0, strides)``: ``shape`` elements from the bytes of ``item``.

    All strides are 0 except the last one (``last_stride``), so a whole axis can
    repeat one valid row (a one-hot ``X_cat`` row, a meta record).
    """
    item = np.ascontiguousarray(item)
    strides = (0,) * (len(shape) - 1) + (last_stride,)
    return Call(np.ndarray, shape, item.dtype, item.tobytes(), 0, strides)


def zero_stride_public(n):
    """A valid-looking public dict of zero-stride views declaring ``n`` rows in about 5 KB (issue 9 item 2)."""
    meta = np.zeros(1, dtype=[("task", "U8"), ("start_idxs", "<i8"), ("learning_rule", "U11"),
                              ("dataset_seed", "<i8"), ("end_idxs", "<i8"), ("model_seed", "<i8"),
                              ("architecture", "U10"), ("batch_size", "<i8"), ("layer_name", "U21")])
    meta[0] = ("imagenet", 0, "adam", 0, 21, 0, "resnet18", 256, "conv0")
    return {
        "X": _zero_stride((n, 21, 45), np.zeros(1, np.float32)),
        "X_cat": _zero_stride((n, 21, 3), np.array([1.0, 0.0, 0.0]), last_stride=8),
        "Y": _zero_stride((n,), np.array(["adam"])),
        "obs_keys": np.array(OBSERVABLE_NAMES),
        "meta": _zero_stride((n,), meta),
    }


def bomb_pickles():
    """Small pickles that allocate far more memory than their size (issue 9 item 2) when trusted.

    Returns
    -------
    dict of str to (bytes, bool)
        The file content and whether to convert it in strict mode.
    """
    big = "x" * (1 << 20)
    numbers = P.EMPTY_LIST + P.MARK + b"".join(P.BININT + i.to_bytes(4, "little") for i in range(20_000)) + P.APPENDS
    doubling = (P.BINGET + b"\x01" + P.BINGET + b"\x02" + P.BINGET + b"\x01" + P.SETITEM + P.POP) * 18
    return {
        "bytearray(N)": (program(call(glob("__builtin__", "bytearray"), integer(1_100_000_000))), False),
        "zero-stride 1e5 rows": (pickle.dumps(zero_stride_public(100_000), protocol=2), False),
        "zero-stride 1e8 rows, strict": (pickle.dumps(zero_stride_public(100_000_000), protocol=2), True),
        "NEWOBJ ndarray": (program(glob("numpy", "ndarray"), tup(tup(integer(10**5), integer(21), integer(45)),
                                                                 text("f4"), raw(b"\x00" * 4), integer(0),
                                                                 tup(integer(0), integer(0), integer(0))),
                                   P.NEWOBJ), False),
        "_reconstruct 1e9 elements": (program(call(glob("numpy.core.multiarray", "_reconstruct"),
                                                   glob("numpy", "ndarray"), tup(integer(10**9)), raw(b"b"))), False),
        "object array with a short list": (program(array_op((10**8,), dtype_op("O8"), P.EMPTY_LIST)), False),
        "zero-size items": (program(array_op((10**12,), dtype_op("V0"), raw(b""))), False),
        "encode of one string 400 times": (program(
            text(big) + P.BINPUT + b"\x01" + P.POP + P.EMPTY_LIST + P.MARK
            + call(glob("_codecs", "encode"), P.BINGET + b"\x01", text("latin1")) * 400 + P.APPENDS), False),
        "set of one list 500 times": (program(
            numbers + P.BINPUT + b"\x01" + P.POP + P.EMPTY_LIST + P.MARK
            + call(glob("__builtin__", "set"), P.BINGET + b"\x01") * 500 + P.APPENDS), False),
        "bytearray doubled in place": (program(
            call(glob("__builtin__", "bytearray"), raw(b"x" * 1024)) + P.BINPUT + b"\x01"
            + call(glob("__builtin__", "slice"), integer(10**12), P.NONE, P.NONE) + P.BINPUT + b"\x02" + P.POP
            + doubling), False),
        # plain Python objects from one-byte opcodes: 56-216 bytes of memory per byte of file
        "4e6 empty lists": (program(P.EMPTY_LIST + P.MARK + P.EMPTY_LIST * 4_000_000 + P.APPENDS), False),
        "4e6 MARKs": (program(P.MARK * 4_000_000 + P.NONE), False),
        "1e6 empty sets": (P.PROTO + b"\x04" + P.EMPTY_LIST + P.MARK + P.EMPTY_SET * 1_000_000 + P.APPENDS + P.STOP,
                           False),
        "BINBYTES8 of 8 GiB": (P.PROTO + b"\x04" + P.BINBYTES8 + (8 << 30).to_bytes(8, "little") + b"x" + P.STOP,
                               False),
        "BYTEARRAY8 of 8 GiB": (P.PROTO + b"\x05" + P.BYTEARRAY8 + (8 << 30).to_bytes(8, "little") + b"x" + P.STOP,
                                False),
    }
