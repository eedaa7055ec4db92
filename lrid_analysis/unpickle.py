"""Restricted, memory-bounded unpickling of numpy data from untrusted files.

A pickle is a small program: loading one can call any importable function,
and numpy's own reconstruction hooks, fed crafted arguments, build arrays
that read memory they do not own or allocate far more than the file holds.
:class:`RestrictedUnpickler` runs that program under three rules:

* **Admitted globals only.** Numpy array, record array, dtype and scalar
  reconstruction (``_reconstruct``, ``_frombuffer`` of protocol 5,
  ``scalar``, ``dtype``), a few builtin types (``set``, ``frozenset``,
  ``slice``, ``complex``, ``bytes`` (empty), ``bytearray``) and ``_codecs.encode`` to latin-1
  (how protocol-2 pickles store bytes). Anything else (``os.system``,
  ``builtins.eval``, ``numpy.save``, ...) raises :class:`UnsafePickleError`
  before it is called. Classes such as ``numpy.ndarray`` are admitted only as
  arguments of these functions: calling them directly is refused (that is how
  zero-stride views and unbacked allocations are made).
* **Every call's arguments are checked** by a guard before the real function
  runs. A ``dtype`` state (pickle ``BUILD``) must be the state numpy derives
  from the layout it declares, so its flags cannot claim "no Python objects"
  for a field that holds them (only the zero-init and Python-API flags of a
  dtype without objects may differ, as numpy versions set them differently;
  the derived state is the one applied), and a dtype is built once, before
  any use. Arrays and scalars whose dtype holds Python objects anywhere (also
  in a structured field) are never filled from file bytes: only from a list
  of objects the unpickler itself made, one per element (numpy's own format
  for object arrays, used by the public file's seed fields).
* **Bounded memory.** Declared lengths are checked against the file's size
  before anything is read or allocated, and every array element and
  data byte, every byte made by ``_codecs.encode`` or ``bytearray`` and every
  set element is charged to a budget of the file's size (plus
  :data:`BUDGET_SLACK`): a file of N bytes cannot hold more, so a small file
  cannot declare a huge array. So are the plain Python objects the opcodes
  make (lists, dicts, tuples, marks, memo entries, stack references):
  every opcode is charged :data:`OBJECT_COST` bytes (an empty set 256)
  before it runs, against a third pool of the same size, so a pickle of
  millions of one-byte ``EMPTY_LIST`` / ``MARK`` / ``EMPTY_SET`` opcodes is
  refused once its objects would outweigh the file, instead of growing to
  60-220 times its size. Text, bytes and numbers are bounded by the file
  bytes they are read from. A public-layout file (numpy arrays and a
  record array of per-row Python values) uses under half of that pool
  (8-40 % for synthetic public-size files). ``max_array_elements`` caps
  each array further (the public schema's shapes in strict conversion). Only ``dict``, ``list``
  and ``set`` accept items, so no opcode grows a ``bytearray`` or an array.

Examples
--------
>>> import io, pickle
>>> import numpy as np
>>> data = pickle.dumps({"x": np.arange(3.0), "s": {1, 2}}, protocol=2)
>>> RestrictedUnpickler(io.BytesIO(data)).load()["x"]
array([0., 1., 2.])
>>> RestrictedUnpickler(io.BytesIO(pickle.dumps(print))).load()
Traceback (most recent call last):
...
lrid_analysis.unpickle.UnsafePickleError: pickle: refused global builtins.print: ...
"""

from __future__ import annotations

import codecs
import copyreg
import io
import math
import os
import pickle
import struct
from pathlib import Path

import numpy as np

__all__ = [
    "BUDGET_SLACK",
    "OBJECT_COST",
    "UnsafePickleError",
    "UnreadablePickleError",
    "RestrictedUnpickler",
    "safe_load_pickle",
]

#: Units (array elements or bytes) a file may use beyond its own size: room for
#: numpy's placeholder arrays and small scalars in tiny files.
BUDGET_SLACK = 1 << 16
#: Bytes charged for each opcode run: an empty list or dict (56-64 bytes) and
#: the reference that holds it, a tuple item, or a memo entry.
OBJECT_COST = 64
#: Opcodes that make bigger objects from nothing (an empty set or frozenset is 216 bytes).
_OPCODE_COSTS = {pickle.EMPTY_SET[0]: 256, pickle.FROZENSET[0]: 256}
#: What each memory pool counts (all three have the same budget).
_POOLS = {"arrays": "array elements / data bytes", "values": "bytes / items from calls",
          "objects": f"bytes of Python objects ({OBJECT_COST} per object or reference an opcode makes)"}
#: The largest array numpy's pickles create before filling it (``_reconstruct``).
_PLACEHOLDER_BYTES = 1 << 12
#: numpy's NPY_ALIGNED_STRUCT dtype flag.
_ALIGNED_STRUCT = 0x80
#: numpy's NPY_NEEDS_INIT | NPY_NEEDS_PYAPI: set differently by numpy versions for dtypes without objects.
_VERSION_FLAGS = 0x08 | 0x10


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for something the restricted unpickler does not admit.

    Attributes
    ----------
    module, name : str
        The refused global (for example ``posix`` and ``system``), or the
        admitted callable / opcode whose arguments were refused.
    where : str
        The file.
    detail : str or None
        What was refused, when it is more than a global.
    """

    def __init__(self, module, name, where="pickle", detail=None):
        self.module, self.name, self.where, self.detail = module, name, where, detail
        what = detail or (
            f"refused global {module}.{name}: only numpy array reconstruction and builtin "
            "containers are admitted. The file may try to run code"
        )
        super().__init__(f"{where}: {what}; nothing from it was executed. Only load pickles from sources you trust.")


class UnreadablePickleError(pickle.UnpicklingError):
    """The file is not a readable pickle (truncated, corrupt, not a pickle at all)."""


def _numpy_modules():
    try:  # numpy >= 2
        from numpy._core import multiarray, numeric
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray, numeric
    return multiarray, numeric


def _describe(obj):
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    module = getattr(obj, "__module__", None) or type(obj).__module__
    return f"{module}.{name}"


def _shape(value, what):
    """A shape as a tuple of non-negative Python ints, and its element count."""
    dims = (value,) if isinstance(value, int) else value
    if not isinstance(dims, (tuple, list)) or not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 for d in dims
    ):
        raise ValueError(f"{what}: shape {value!r} is not a tuple of non-negative integers")
    dims = tuple(int(d) for d in dims)
    return dims, math.prod(dims)


def _canonical_dtype(base, state):
    """The dtype that ``base`` becomes under ``state``, built by numpy from the declared layout.

    Raises ValueError when the state is malformed or names a layout numpy
    refuses (fields beyond the item size, overlapping object fields).
    """
    if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
        raise ValueError(f"unsupported dtype state {state!r:.200}")
    _, endian, subarray, names, fields, elsize, _, flags = state[:8]
    if len(state) == 9 and state[8] is not None:
        raise ValueError("dtype metadata is not admitted")
    if endian not in ("<", ">", "|", "=") or not isinstance(flags, int):
        raise ValueError(f"malformed dtype state {state!r:.200}")
    if (names is None) != (fields is None):
        raise ValueError("dtype state has field names without fields (or fields without names)")
    if names is not None:
        if not isinstance(names, tuple) or not isinstance(fields, dict) or not all(isinstance(n, str) for n in names):
            raise ValueError("dtype state: names must be a tuple of str and fields a dict")
        formats, offsets, titles = [], [], []
        for name in names:
            entry = fields.get(name)
            if not isinstance(entry, tuple) or len(entry) not in (2, 3) or not isinstance(entry[0], np.dtype) \
                    or not isinstance(entry[1], int):
                raise ValueError(f"dtype state: field {name!r} is {entry!r:.200}")
            formats.append(entry[0])
            offsets.append(entry[1])
            titles.append(entry[2] if len(entry) == 3 else None)
        spec = {"names": list(names), "formats": formats, "offsets": offsets, "itemsize": elsize}
        if any(t is not None for t in titles):
            spec["titles"] = titles
        canonical = np.dtype(spec, align=bool(flags & _ALIGNED_STRUCT))
        if base.type is np.record:
            canonical = np.dtype((np.record, canonical))
        return canonical
    if subarray is not None:
        if not isinstance(subarray, tuple) or len(subarray) != 2 or not isinstance(subarray[0], np.dtype):
            raise ValueError(f"dtype state: malformed subarray {subarray!r:.200}")
        return np.dtype((subarray[0], _shape(subarray[1], "dtype subarray")[0]))
    if base.kind in "SUV" and not isinstance(elsize, int):
        raise ValueError("dtype state: item size is not an integer")
    if base.kind == "S":
        return np.dtype(f"S{elsize}")
    if base.kind == "V":
        return np.dtype((base.type, elsize)) if base.type is np.record else np.dtype(f"V{elsize}")
    if base.kind == "U":
        if elsize % 4:
            raise ValueError(f"dtype state: unicode item size {elsize} is not a multiple of 4")
        return np.dtype(f"{endian if endian in '<>' else '='}U{elsize // 4}")
    return base.newbyteorder(endian) if endian in "<>" else np.dtype(base)


def _file_size(file):
    try:
        return os.fstat(file.fileno()).st_size
    except (AttributeError, OSError, io.UnsupportedOperation):
        here = file.tell()
        end = file.seek(0, io.SEEK_END)
        file.seek(here)
        return end


def _charged(method, cost):
    """``method`` (an opcode's handler), charging ``cost`` bytes of Python objects first."""

    def run(self):
        self._charge(cost, "Python objects", "objects")
        method(self)

    return run


class RestrictedUnpickler(pickle._Unpickler):
    """An unpickler that only rebuilds numpy arrays, record arrays and builtins, in bounded memory.

    It runs the pure-Python unpickling loop so that every opcode that calls,
    builds or fills an object goes through a check first (see the module
    docstring for the rules). Dicts, lists, tuples, strings and numbers need
    no global.

    Parameters
    ----------
    file : binary file object
        Seekable (its size sets the memory budget) unless ``budget`` is given.
    where : str
        Name of the file, used in error messages.
    budget : int, optional
        Array elements / data bytes the pickle may create; the file size plus
        :data:`BUDGET_SLACK` by default.
    max_array_elements : int, optional
        Largest element count of any one array.
    **kwargs
        Passed to :class:`pickle.Unpickler` (``encoding="latin1"`` reads
        Python 2 pickles).

    Raises
    ------
    UnsafePickleError
        From :meth:`load`, naming what was refused.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, where="pickle", *, budget=None, max_array_elements=None, **kwargs):
        size = _file_size(file)
        super().__init__(file, **kwargs)
        self.where, self.size = where, size
        self.budget = size + BUDGET_SLACK if budget is None else int(budget)
        self.max_array_elements = max_array_elements
        self.used = {"arrays": 0, "values": 0, "objects": 0}
        self._fresh = {}  # id -> dtype / array that may still be BUILT once
        self._globals, self._calls = self._admitted()

    # -- the admitted globals and their guards --------------------------------

    def _admitted(self):
        multiarray, numeric = _numpy_modules()
        admitted = {}
        for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            admitted[(module, "_reconstruct")] = multiarray._reconstruct
            admitted[(module, "scalar")] = multiarray.scalar
        for module in ("numpy.core.numeric", "numpy._core.numeric"):
            admitted[(module, "_frombuffer")] = numeric._frombuffer
        for module in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray"):
            admitted[(module, "ndarray")] = np.ndarray
            admitted[(module, "dtype")] = np.dtype
        for module in ("numpy", "numpy.rec", "numpy.core.records", "numpy._core.records"):
            admitted[(module, "recarray")] = np.recarray
            admitted[(module, "record")] = np.record
        for module in ("builtins", "__builtin__"):
            for name in ("set", "frozenset", "slice", "complex", "bytes", "bytearray", "object"):
                admitted[(module, name)] = getattr(__import__("builtins"), name)
        for module in ("copyreg", "copy_reg"):
            admitted[(module, "_reconstructor")] = copyreg._reconstructor
        admitted[("_codecs", "encode")] = codecs.encode
        calls = {
            multiarray._reconstruct: self._reconstruct,
            multiarray.scalar: self._scalar,
            numeric._frombuffer: self._frombuffer,
            np.dtype: self._dtype,
            copyreg._reconstructor: self._reconstructor,
            codecs.encode: self._encode,
            bytes: self._bytes,
            bytearray: self._bytearray,
            set: self._set,
            frozenset: self._frozenset,
            slice: slice,
            complex: self._complex,
        }
        return admitted, calls

    def find_class(self, module, name):
        try:
            return self._globals[(module, name)]
        except KeyError:
            raise UnsafePickleError(module, name, self.where) from None

    def _refuse(self, what, detail):
        module, _, name = what.rpartition(".")
        raise UnsafePickleError(module, name, self.where, detail=detail)

    def _charge(self, units, what, pool="arrays"):
        # three pools of the same size: array elements / data bytes, bytes / items made by calls (the
        # data a protocol-2 array is filled from is made by _codecs.encode first, then charged to the
        # array), and the Python objects opcodes make
        self.used[pool] += units
        if self.used[pool] > self.budget:
            kind = _POOLS[pool]
            self._refuse(what, f"refused {what}: the pickle would create more than {self.budget:,} {kind}, "
                               "more than a file of its size can hold (a memory bomb)")

    def _take_dtype(self, dtype, what):
        """A dtype argument; a dtype used once can no longer be rebuilt (BUILD)."""
        if isinstance(dtype, (str, bytes)) and len(dtype) <= 16:
            dtype = np.dtype(dtype.decode("latin1") if isinstance(dtype, bytes) else dtype)
        if not isinstance(dtype, np.dtype):
            self._refuse(what, f"refused {what} with dtype {dtype!r:.100}: not a numpy dtype")
        self._fresh.pop(id(dtype), None)
        return dtype

    def _check_array(self, shape, dtype, what):
        shape, n = _shape(shape, what)
        if self.max_array_elements is not None and n > self.max_array_elements:
            self._refuse(what, f"refused {what} of shape {shape}: {n:,} elements, more than the "
                               f"{self.max_array_elements:,} this file may hold")
        return shape, n, n * dtype.itemsize

    def _no_objects(self, dtype, what):
        if dtype.hasobject:
            self._refuse(what, f"refused {what} with dtype {dtype}: it holds Python objects and would be "
                               "filled from raw file bytes")

    def _fresh_item(self, obj):
        self._fresh[id(obj)] = obj
        return obj

    def _dtype(self, obj, align=False, copy=True):
        if not (isinstance(obj, str) and len(obj) <= 16 or obj is np.record or obj is np.void):
            self._refuse("numpy.dtype", f"refused numpy.dtype({obj!r:.100}): only type codes are admitted")
        return self._fresh_item(np.dtype(obj, bool(align), True))  # always a new object, never a shared one

    def _reconstruct(self, cls, shape, dtype):
        what = "numpy _reconstruct"
        if cls not in (np.ndarray, np.recarray):
            self._refuse(what, f"refused {what}({cls!r:.100}, ...): only numpy array classes are admitted")
        dtype = self._take_dtype(dtype, what)
        shape, n, nbytes = self._check_array(shape, dtype, what)
        if nbytes > _PLACEHOLDER_BYTES:
            self._refuse(what, f"refused {what} allocating {nbytes:,} bytes: numpy's pickles only create an "
                               "empty placeholder here")
        self._charge(n, what)
        return self._fresh_item(_numpy_modules()[0]._reconstruct(cls, shape, dtype))

    def _reconstructor(self, cls, base, state):
        what = "copyreg._reconstructor"
        if cls not in (np.ndarray, np.recarray) or base not in (object, np.ndarray):
            self._refuse(what, f"refused {what}({cls!r:.100}, {base!r:.100}, ...): only numpy array "
                               "classes are admitted")
        if base is np.ndarray:
            _, n, nbytes = self._check_array(state, np.dtype(float), what)
            if nbytes > _PLACEHOLDER_BYTES:
                self._refuse(what, f"refused {what} allocating {nbytes:,} bytes without data")
            self._charge(n, what)
        return self._fresh_item(copyreg._reconstructor(cls, base, state))

    def _scalar(self, dtype, data=None):
        what = "numpy scalar"
        dtype = self._take_dtype(dtype, what)
        self._no_objects(dtype, what)
        if not isinstance(data, (bytes, str)) or len(data) != dtype.itemsize:
            self._refuse(what, f"refused {what} of dtype {dtype} from {type(data).__name__} data: "
                               f"expected {dtype.itemsize} bytes")
        self._charge(dtype.itemsize, what)
        return _numpy_modules()[0].scalar(dtype, data)

    def _frombuffer(self, buf, dtype, shape, order):
        what = "numpy _frombuffer"
        dtype = self._take_dtype(dtype, what)
        self._no_objects(dtype, what)
        shape, n, nbytes = self._check_array(shape, dtype, what)
        if not isinstance(buf, (bytes, bytearray)) or len(buf) != nbytes or order not in ("C", "F"):
            self._refuse(what, f"refused {what}: {type(buf).__name__} of "
                               f"{len(buf) if isinstance(buf, (bytes, bytearray)) else '?'} bytes for shape "
                               f"{shape} of {dtype} ({nbytes:,} bytes), order {order!r:.20}")
        self._charge(max(n, nbytes), what)
        return _numpy_modules()[1]._frombuffer(buf, dtype, shape, order)

    def _encode(self, obj, encoding="utf-8", errors="strict"):
        if not isinstance(obj, str) or str(encoding).lower().replace("_", "-") not in ("latin1", "latin-1"):
            self._refuse("_codecs.encode", f"refused _codecs.encode with encoding {encoding!r:.50}: only text "
                                           "to latin-1 bytes is admitted")
        self._charge(len(obj), "_codecs.encode", "values")
        return obj.encode("latin-1")

    def _bytes(self, *args):
        if args:  # protocols 0-2 write b"" as bytes(), every other bytes value through _codecs.encode
            self._refuse("builtins.bytes", "refused bytes() with arguments: only the empty bytes b'' is made so")
        return b""

    def _bytearray(self, source=b"", encoding=None, errors="strict"):
        if not isinstance(source, (bytes, str)) or (isinstance(source, str) and encoding is None):
            self._refuse("builtins.bytearray", f"refused bytearray({type(source).__name__}): only bytes or "
                                               "text in the file are admitted, never a size")
        self._charge(len(source), "builtins.bytearray", "values")
        return bytearray(source, "latin-1") if isinstance(source, str) else bytearray(source)

    def _items(self, iterable, what):
        if not isinstance(iterable, (list, tuple, set, frozenset)):
            self._refuse(what, f"refused {what}({type(iterable).__name__}): only a list or tuple is admitted")
        self._charge(len(iterable), what, "values")
        return iterable

    def _set(self, iterable=()):
        return set(self._items(iterable, "builtins.set"))

    def _frozenset(self, iterable=()):
        return frozenset(self._items(iterable, "builtins.frozenset"))

    def _complex(self, real=0.0, imag=0.0):
        if not all(isinstance(v, (int, float)) for v in (real, imag)):
            self._refuse("builtins.complex", "refused complex() of non-numbers")
        return complex(real, imag)

    def _call(self, func, args, opcode):
        try:
            guard = self._calls[func]
        except (KeyError, TypeError):
            guard = None
        if guard is None or not isinstance(args, tuple):
            self._refuse(_describe(func), f"refused {opcode} of {_describe(func)}: it is admitted only as an "
                                          "argument of numpy's reconstruction functions, not as a call")
        return guard(*args)

    # -- opcodes that call, build or fill objects ----------------------------

    def load_reduce(self):
        args = self.stack.pop()
        self.stack[-1] = self._call(self.stack[-1], args, "call")

    def _instantiate(self, klass, args):  # INST and OBJ (protocols 0 and 1)
        self.append(self._call(klass, tuple(args), "call"))

    def load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._new(cls, args, {}))

    def load_newobj_ex(self):
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._new(cls, args, kwargs))

    def _new(self, cls, args, kwargs):
        if cls is complex and not kwargs and isinstance(args, tuple):
            return self._complex(*args)
        self._refuse(_describe(cls), f"refused NEWOBJ of {_describe(cls)}: only complex numbers are rebuilt that way")

    def load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        if self._fresh.pop(id(inst), None) is not inst:
            self._refuse(_describe(inst), f"refused BUILD of {type(inst).__name__}: only a dtype or array just "
                                          "created by numpy's reconstruction can be built, once")
        if isinstance(inst, np.dtype):
            self._build_dtype(inst, state)
        else:
            self._build_array(inst, state)

    def _build_dtype(self, dtype, state):
        what = "numpy.dtype"
        if isinstance(state, tuple) and len(state) >= 5:  # field and subarray dtypes are used from now on
            subarray, fields = state[2], state[4]
            for entry in [subarray, *(fields.values() if isinstance(fields, dict) else ())]:
                if isinstance(entry, tuple) and entry:
                    self._fresh.pop(id(entry[0]), None)
        try:
            canonical = _canonical_dtype(dtype, state)
        except (ValueError, TypeError) as err:
            self._refuse(what, f"refused dtype state: {err}")
        expected = canonical.__reduce__()[2]
        # numpy versions differ in the zero-init / Python-API bits of dtypes without objects
        # (harmless: the derived state is applied, not the declared one); for a dtype holding
        # objects every flag must match
        tolerated = 0 if canonical.hasobject else _VERSION_FLAGS
        if tuple(state[:7]) != expected[:7] or (state[7] ^ expected[7]) & ~tolerated:
            flags = "" if state[7] == expected[7] else (
                f"; it claims flags {state[7]:#x} where its fields need {expected[7]:#x}"
                + (" (they hold Python objects)" if canonical.hasobject else ""))
            self._refuse(what, f"refused dtype state {state!r:.300}: numpy derives {expected!r:.300} from the "
                               f"declared layout{flags} (a crafted dtype)")
        dtype.__setstate__(expected)
        if dtype != canonical or dtype.flags != canonical.flags or dtype.itemsize != canonical.itemsize:
            self._refuse(what, f"refused dtype state {state!r:.300}: it does not rebuild {canonical}")

    def _build_array(self, array, state):
        what = "numpy array"
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            self._refuse(what, f"refused array state of type {type(state).__name__}")
        shape, dtype, fortran, data = state[-4:]
        dtype = self._take_dtype(dtype, what)
        shape, n, nbytes = self._check_array(shape, dtype, what)
        if dtype.hasobject:
            if type(data) is not list or len(data) != n:
                self._refuse(what, f"refused array of shape {shape} with dtype {dtype}: it holds Python objects, "
                                   f"so its data must be a list of {n:,} objects, not {type(data).__name__}")
            self._charge(n, what)
        else:
            if not isinstance(data, (bytes, str)) or len(data) != nbytes:
                size = len(data) if isinstance(data, (bytes, str, list)) else "?"
                self._refuse(what, f"refused array of shape {shape} with dtype {dtype}: it needs {nbytes:,} data "
                                   f"bytes, the file gives {size} ({type(data).__name__})")
            self._charge(max(n, nbytes), what)
        array.__setstate__((*state[:-4], shape, dtype, fortran, data))

    def _target(self, kind, opcode):
        target = self.stack[-1]
        if type(target) is not kind:
            self._refuse(opcode, f"refused {opcode} into {type(target).__name__}: only a {kind.__name__} "
                                 "accepts items")
        return target

    def load_append(self):
        value = self.stack.pop()
        self._target(list, "APPEND").append(value)

    def load_appends(self):
        items = self.pop_mark()
        self._target(list, "APPENDS").extend(items)

    def load_setitem(self):
        value = self.stack.pop()
        key = self.stack.pop()
        self._target(dict, "SETITEM")[key] = value

    def load_setitems(self):
        items = self.pop_mark()
        target = self._target(dict, "SETITEMS")
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]

    def load_additems(self):
        items = self.pop_mark()
        self._target(set, "ADDITEMS").update(items)

    def _read_declared(self, fmt, opcode):
        """Read a length-prefixed value, refusing a length beyond the file's size before reading it."""
        (length,) = struct.unpack(fmt, self.read(struct.calcsize(fmt)))
        if not 0 <= length <= self.size:
            raise UnreadablePickleError(f"{self.where}: not a readable pickle ({opcode} declares {length:,} bytes "
                                        f"in a file of {self.size:,} bytes: truncated or crafted)")
        data = self.read(length)
        if len(data) != length:
            raise UnreadablePickleError(f"{self.where}: not a readable pickle ({opcode} declares {length:,} bytes, "
                                        f"the file ends after {len(data):,})")
        return data

    def load_binstring(self):
        self.append(self._decode_string(self._read_declared("<i", "BINSTRING")))

    def load_binbytes(self):
        self.append(self._read_declared("<I", "BINBYTES"))

    def load_binbytes8(self):
        self.append(self._read_declared("<Q", "BINBYTES8"))

    def load_binunicode(self):
        self.append(str(self._read_declared("<I", "BINUNICODE"), "utf-8", "surrogatepass"))

    def load_binunicode8(self):
        self.append(str(self._read_declared("<Q", "BINUNICODE8"), "utf-8", "surrogatepass"))

    def load_long4(self):
        self.append(pickle.decode_long(self._read_declared("<i", "LONG4")))

    def load_bytearray8(self):
        data = self._read_declared("<Q", "BYTEARRAY8")
        self._charge(len(data), "BYTEARRAY8", "values")
        self.append(bytearray(data))

    def load_frame(self):
        (length,) = struct.unpack("<Q", self.read(8))
        if length > self.size:
            raise UnreadablePickleError(f"{self.where}: not a readable pickle (FRAME declares {length:,} bytes "
                                        f"in a file of {self.size:,} bytes: truncated or crafted)")
        self._unframer.load_frame(length)

    def load_next_buffer(self):
        self._refuse("NEXT_BUFFER", "refused out-of-band buffer: the file must hold its own data")

    def persistent_load(self, pid):
        self._refuse("persistent_load", f"refused persistent id {pid!r:.100}")

    for _opcode, _method in (
        (pickle.REDUCE, load_reduce), (pickle.NEWOBJ, load_newobj), (pickle.NEWOBJ_EX, load_newobj_ex),
        (pickle.BUILD, load_build), (pickle.APPEND, load_append), (pickle.APPENDS, load_appends),
        (pickle.SETITEM, load_setitem), (pickle.SETITEMS, load_setitems), (pickle.ADDITEMS, load_additems),
        (pickle.BYTEARRAY8, load_bytearray8), (pickle.NEXT_BUFFER, load_next_buffer),
        (pickle.BINSTRING, load_binstring), (pickle.BINBYTES, load_binbytes), (pickle.BINBYTES8, load_binbytes8),
        (pickle.BINUNICODE, load_binunicode), (pickle.BINUNICODE8, load_binunicode8), (pickle.LONG4, load_long4),
        (pickle.FRAME, load_frame),
        (pickle.READONLY_BUFFER, load_next_buffer),
    ):
        dispatch[_opcode[0]] = _method
    del _opcode, _method
    # every opcode pays for the objects it makes before it runs
    dispatch.update({code: _charged(method, _OPCODE_COSTS.get(code, OBJECT_COST)) for code, method in dispatch.items()})


def safe_load_pickle(path, max_array_elements=None):
    """Load a pickle with :class:`RestrictedUnpickler` and ``encoding="latin1"``.

    Parameters
    ----------
    path : str or Path
    max_array_elements : int, optional
        Refuse any array with more elements (checked before it is filled).

    Returns
    -------
    object
        The unpickled object (numpy arrays, builtin containers).

    Raises
    ------
    UnsafePickleError
        When the file asks for anything beyond numpy arrays and builtins, or
        for more memory than its size can account for.
    UnreadablePickleError
        When the file is not a readable pickle (truncated, not a pickle).

    Examples
    --------
    >>> import pickle, tempfile, numpy as np
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "a.pkl"
    ...     _ = path.write_bytes(pickle.dumps({"X": np.zeros((2, 3))}, protocol=2))
    ...     safe_load_pickle(path)["X"].shape
    (2, 3)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    with open(path, "rb") as file:
        unpickler = RestrictedUnpickler(file, where=str(path), encoding="latin1",
                                        max_array_elements=max_array_elements)
        try:
            return unpickler.load()
        except (UnsafePickleError, UnreadablePickleError):
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
                KeyError, struct.error, OverflowError) as err:
            raise UnreadablePickleError(f"{path}: not a readable pickle ({type(err).__name__}: {err})") from err
