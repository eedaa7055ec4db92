"""The public dataset of Nayebi et al. (2020): download, safe unpickling, conversion.

The authors published their observable statistics as one Python 2.7 pickle,
``dataset.pkl`` (about 511 MB). This module

* downloads it into the user cache with resume support
  (:func:`download_public`),
* reads it with a restricted unpickler that only rebuilds numpy arrays and
  builtin containers, so a tampered file cannot run code
  (:func:`safe_load_pickle`, :class:`RestrictedUnpickler`),
* checks it against what is known about the file and converts it to the tidy
  Parquet contract of :mod:`lrid_analysis.dataset` (:func:`public_frame`,
  :func:`convert_public`).

The command line front end is ``python -m lrid_analysis.download``.

Conversion choices
------------------
* ``source`` is ``"nayebi2020"``; ``run_id`` is
  :func:`lrid_analysis.synthetic.network_id` (task, architecture, rule,
  batch size and seeds), stable across conversions.
* ``checkpoint`` is 0..20 and ``epoch = 5 * checkpoint``: the paper records
  21 points along training, 5 epochs apart (Fig. 4 of Nayebi et al. 2020).
* ``layer_position`` comes from the ``X_cat`` one-hot (early, middle, deep).
* ``layer_index`` is the depth order of a layer among the layers of its
  network in the file (see :func:`layer_depth_key`); null for a layer name
  whose depth cannot be derived.
* ``unit_fraction = 1``, ``noise_std = 0``, ``obs_seed = 0``: the public
  statistics use every unit without added noise.
* The 45 observables are stored as float32 (the contract's type); infinities
  and NaNs are kept, and a float64 value beyond the float32 range would
  become infinite.
* Rows keep the public file's order (one trajectory after the other, its 21
  checkpoints in order), so :func:`lrid_analysis.dataset.load_view` returns
  the trajectories in the original row order, which the original
  train/test splits index into.
"""

from __future__ import annotations

import copyreg
import hashlib
import os
import pickle
import re
import socket
import sys
import urllib.error
import urllib.request
import warnings
from http.client import HTTPException
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .dataset import LAYER_POSITIONS, DatasetError, write_partitioned
from .observables import OBSERVABLE_NAMES
from .sources import cache_dir, public_path
from .synthetic import network_id

__all__ = [
    "PUBLIC_URL",
    "PUBLIC_FILENAME",
    "SOURCE",
    "N_PUBLIC_ROWS",
    "N_CHECKPOINTS",
    "EPOCHS_PER_CHECKPOINT",
    "LEARNING_RULES",
    "REQUIRED_KEYS",
    "META_FIELDS",
    "DownloadError",
    "UnsafePickleError",
    "PublicDataError",
    "default_pickle_path",
    "download_public",
    "RestrictedUnpickler",
    "safe_load_pickle",
    "layer_depth_key",
    "public_frame",
    "convert_public",
]

#: Where the authors host the dataset (``get_dataset.sh`` of neuroailab/lr-identify).
PUBLIC_URL = "https://lridentify-datasets.s3-us-west-1.amazonaws.com/dataset.pkl"
PUBLIC_FILENAME = "dataset.pkl"
SOURCE = "nayebi2020"
N_PUBLIC_ROWS = 20736
N_CHECKPOINTS = 21
#: Training epochs between two consecutive checkpoints in the public data.
EPOCHS_PER_CHECKPOINT = 5.0
LEARNING_RULES = ("adam", "sgdm", "information", "feedback")
REQUIRED_KEYS = ("X", "X_cat", "Y", "obs_keys", "meta")
META_FIELDS = (
    "task",
    "start_idxs",
    "learning_rule",
    "dataset_seed",
    "end_idxs",
    "model_seed",
    "architecture",
    "batch_size",
    "layer_name",
)


class DownloadError(RuntimeError):
    """The dataset could not be fetched (offline, HTTP error, dropped connection)."""


class PublicDataError(DatasetError):
    """The pickle does not look like the public dataset."""


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for something the restricted unpickler does not admit.

    Attributes
    ----------
    module, name : str
        The refused global (for example ``posix`` and ``system``), or the
        admitted callable whose arguments were refused.
    """

    def __init__(self, module, name, where="pickle", detail=None):
        self.module, self.name, self.where, self.detail = module, name, where, detail
        what = detail or (
            f"refused global {module}.{name}: only numpy array reconstruction and builtin "
            "containers are admitted"
        )
        super().__init__(
            f"{where}: {what}. The file may try to run code; nothing from it was executed. "
            "Only load pickles from sources you trust."
        )


# ---------------------------------------------------------------------------
# download


def default_pickle_path(cache=None):
    """Where the downloaded ``dataset.pkl`` lives: ``<cache dir>/dataset.pkl``."""
    return cache_dir(cache) / PUBLIC_FILENAME


def _offline_message(url, dest, reason):
    return (
        f"could not reach {url} ({reason}); this machine seems to be offline. "
        f"Fetch the file on a machine with internet access (for example `curl -fLo dataset.pkl {url}`), "
        f"then either copy it to {dest} or convert it with "
        "`python -m lrid_analysis.download --from-file /path/to/dataset.pkl`"
    )


def _content_range(response):
    """Parse ``Content-Range: bytes a-b/total`` into (a, total); None for unknown parts."""
    match = re.match(r"bytes\s+(\d+|\*)(?:-(\d+))?/(\d+|\*)", response.headers.get("Content-Range", ""))
    if not match:
        return None, None
    start = None if match[1] == "*" else int(match[1])
    total = None if match[3] == "*" else int(match[3])
    return start, total


def _open(url, offset, timeout, dest):
    headers = {"User-Agent": f"lrid/{__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            return err  # range not satisfiable: the caller checks whether .part is complete
        raise DownloadError(f"{url}: the server answered HTTP {err.code} {err.reason}") from err
    except urllib.error.URLError as err:
        raise DownloadError(_offline_message(url, dest, err.reason)) from err
    except (TimeoutError, socket.timeout, ConnectionError) as err:
        raise DownloadError(_offline_message(url, dest, err)) from err


def download_public(url=PUBLIC_URL, dest=None, cache=None, force=False, expected_size=None,
                    timeout=60.0, chunk_size=1 << 20, progress=True):
    """Download the public ``dataset.pkl``, resuming an interrupted download.

    Bytes go to ``<dest>.part``; a later call asks the server for the rest
    with an HTTP ``Range`` header and appends (206 answer), or starts over
    when the server ignores the range (200 answer). The ``.part`` file is
    renamed to ``dest`` only once its size matches the announced length.

    Parameters
    ----------
    url : str
        Address of the file (:data:`PUBLIC_URL` by default).
    dest : str or Path, optional
        Destination file; ``<cache dir>/dataset.pkl`` by default.
    cache : str or Path, optional
        Cache folder override (see :func:`lrid_analysis.sources.cache_dir`).
    force : bool
        Download again even if ``dest`` exists; a partial download is
        discarded, and ``dest`` is replaced only once the new copy is complete.
    expected_size : int, optional
        Known size in bytes; the download fails if the finished file differs.
    timeout : float
        Seconds to wait for the server on each network operation.
    chunk_size : int
        Bytes read at a time.
    progress : bool
        Show a tqdm progress bar (on stderr).

    Returns
    -------
    Path
        The complete file.

    Raises
    ------
    DownloadError
        When offline (the message says where to put a manually fetched
        file), on an HTTP error, or when the connection drops (the
        ``.part`` file is kept: call again to resume).
    """
    from tqdm.auto import tqdm

    dest = Path(dest) if dest is not None else default_pickle_path(cache)
    part = dest.with_name(dest.name + ".part")
    if force and part.exists():
        part.unlink()  # an existing dest stays until the new copy is complete
    if dest.exists() and not force:
        _check_size(dest, expected_size, url)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    offset = part.stat().st_size if part.exists() else 0
    response = _open(url, offset, timeout, dest)
    status = getattr(response, "status", None) or response.code
    if status == 416:  # nothing left to send: .part is complete, or longer than the remote file
        _, total = _content_range(response)
        response.close()
        if total is not None and total == offset:
            return _finish(part, dest, expected_size, url)
        part.unlink()
        offset = 0
        response = _open(url, 0, timeout, dest)
        status = response.status
    with response:
        if status == 206:
            start, total = _content_range(response)
            if start != offset:
                raise DownloadError(
                    f"{url}: asked for bytes from {offset} but the server sent a range starting at {start}; "
                    f"delete {part} or use --force to start over"
                )
            mode = "ab"
        else:
            mode, offset = "wb", 0
            length = response.headers.get("Content-Length")
            total = int(length) if length is not None else None
        received = offset
        try:
            with open(part, mode) as out, tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                desc=dest.name, disable=not progress, leave=False,
            ) as bar:
                while True:
                    chunk = response.read(chunk_size)
                    if not chunk:
                        break
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        except (HTTPException, OSError) as err:
            raise DownloadError(
                f"{url}: the connection dropped after {received} of {total or 'unknown'} bytes ({err!r}); "
                f"the partial file is kept at {part}: run the same command again to resume"
            ) from err
    if total is not None and received != total:
        raise DownloadError(
            f"{url}: the connection dropped after {received} of {total} bytes; the partial file is kept "
            f"at {part}: run the same command again to resume"
        )
    return _finish(part, dest, expected_size, url)


def _check_size(path, expected_size, url):
    if expected_size is not None and path.stat().st_size != int(expected_size):
        raise DownloadError(
            f"{path} has {path.stat().st_size} bytes, expected {int(expected_size)}; "
            f"delete it or download again with --force (from {url})"
        )


def _finish(part, dest, expected_size, url):
    try:
        _check_size(part, expected_size, url)
    except DownloadError:
        part.unlink()
        raise
    os.replace(part, dest)
    return dest


# ---------------------------------------------------------------------------
# restricted unpickling


def _numpy_multiarray():
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    return multiarray


def _guarded_reconstructor(cls, base, state):
    """``copyreg._reconstructor`` restricted to numpy array classes."""
    if cls not in (np.ndarray, np.recarray) or base not in (object, np.ndarray):
        raise UnsafePickleError(
            "copyreg", "_reconstructor",
            detail=f"refused copyreg._reconstructor({cls!r}, {base!r}, ...): only numpy array classes are admitted",
        )
    return copyreg._reconstructor(cls, base, state)


def _guarded_encode(obj, encoding="utf-8", errors="strict"):
    """``_codecs.encode`` as protocol-2 pickles of bytes use it: text to latin-1 bytes only."""
    if not isinstance(obj, str) or str(encoding).lower().replace("_", "-") not in ("latin1", "latin-1"):
        raise UnsafePickleError(
            "_codecs", "encode",
            detail=f"refused _codecs.encode with encoding {encoding!r}: only text to latin-1 bytes is admitted",
        )
    return obj.encode("latin-1", errors)


def _admitted_globals():
    multiarray = _numpy_multiarray()
    admitted = {}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        admitted[(module, "_reconstruct")] = multiarray._reconstruct
        admitted[(module, "scalar")] = multiarray.scalar
    for module in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray"):
        admitted[(module, "ndarray")] = np.ndarray
        admitted[(module, "dtype")] = np.dtype
    for module in ("numpy", "numpy.rec", "numpy.core.records", "numpy._core.records"):
        admitted[(module, "recarray")] = np.recarray
        admitted[(module, "record")] = np.record
    for module in ("builtins", "__builtin__"):
        for name in ("set", "frozenset", "slice", "complex", "bytearray", "object"):
            admitted[(module, name)] = getattr(__import__("builtins"), name)
    for module in ("copyreg", "copy_reg"):
        admitted[(module, "_reconstructor")] = _guarded_reconstructor
    admitted[("_codecs", "encode")] = _guarded_encode
    return admitted


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that only rebuilds numpy arrays, record arrays and builtins.

    Every global a pickle names goes through :meth:`find_class`; only the
    numpy array machinery (``_reconstruct``, ``ndarray``, ``dtype``,
    ``scalar``, ``recarray``, ``record``), a few builtin types (``set``,
    ``frozenset``, ``slice``, ``complex``, ``bytearray``, ``object``),
    ``copyreg._reconstructor`` called with numpy array classes and
    ``_codecs.encode`` to latin-1 (how protocol-2 pickles store bytes) are
    admitted. Anything else (``os.system``, ``subprocess``, ``builtins.eval``,
    ``numpy.save``, ...) raises :class:`UnsafePickleError` before it can be
    called. Dicts, lists, tuples, strings and numbers need no global.

    Parameters
    ----------
    file : binary file object
    where : str
        Name of the file, used in error messages.
    **kwargs
        Passed to :class:`pickle.Unpickler` (``encoding="latin1"`` reads
        Python 2 pickles).
    """

    def __init__(self, file, where="pickle", **kwargs):
        super().__init__(file, **kwargs)
        self.where = where
        self._admitted = _admitted_globals()

    def find_class(self, module, name):
        try:
            return self._admitted[(module, name)]
        except KeyError:
            raise UnsafePickleError(module, name, self.where) from None

    def persistent_load(self, pid):
        raise UnsafePickleError("persistent_load", repr(pid), self.where,
                                detail=f"refused persistent id {pid!r}")


def safe_load_pickle(path):
    """Load a pickle with :class:`RestrictedUnpickler` and ``encoding="latin1"``.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    object
        The unpickled object (numpy arrays, builtin containers).

    Raises
    ------
    UnsafePickleError
        When the file asks for anything beyond numpy arrays and builtins.
    PublicDataError
        When the file is not a readable pickle (truncated, not a pickle).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    with open(path, "rb") as file:
        try:
            return RestrictedUnpickler(file, where=str(path), encoding="latin1").load()
        except UnsafePickleError as err:
            if err.where != str(path):  # raised by an admitted callable, which does not know the file
                raise UnsafePickleError(err.module, err.name, str(path), err.detail) from None
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
            raise PublicDataError(f"{path}: not a readable pickle ({type(err).__name__}: {err})") from err


# ---------------------------------------------------------------------------
# checks and conversion

_CONV = re.compile(r"^conv(\d+)$")
_BLOCK = re.compile(r"^block_(?:group|layer)(\d+)_(\d+)/conv(\d+)$")
_FC = re.compile(r"^fc(\d+)$")
_HEAD = re.compile(r"^head_contrastive/nl_(\d+)$")


def layer_depth_key(layer_name):
    """A sort key giving the depth order of a public layer name.

    Stages in order: stem and AlexNet/KNet convolutions ``conv<k>``; ResNet
    blocks ``block_group<g>_<b>/conv<c>`` (v1) or ``block_layer<g>_<b>/conv<c>``
    (v2) by group, block, then convolution, so a block's projection shortcut
    ``conv0`` comes before its ``conv1``; fully connected ``fc<k>``; the
    ResNet readout ``dense``; the SimCLR head ``head_contrastive/nl_<k>``.

    Parameters
    ----------
    layer_name : str

    Returns
    -------
    tuple of 4 int, or None when the name matches none of these patterns.
    """
    for stage, pattern in enumerate((_CONV, _BLOCK, _FC)):
        match = pattern.match(layer_name)
        if match:
            numbers = [int(g) for g in match.groups()]
            return (stage, *numbers, *[0] * (3 - len(numbers)))
    if layer_name == "dense":
        return (3, 0, 0, 0)
    match = _HEAD.match(layer_name)
    if match:
        return (4, int(match[1]), 0, 0)
    return None


def _layer_index(run_id, layer_name):
    """Depth rank of each row's layer among the layers of its network (nullable)."""
    keys = {name: layer_depth_key(name) for name in pd.unique(layer_name)}
    unknown = sorted(name for name, key in keys.items() if key is None)
    if unknown:
        warnings.warn(f"no depth order known for layer name(s) {unknown}; their layer_index is null", stacklevel=3)
    code = {name: float(np.dot(key, (1e9, 1e6, 1e3, 1))) if key else np.nan for name, key in keys.items()}
    score = pd.Series(layer_name).map(code)
    rank = score.groupby(pd.Series(run_id), sort=False).rank(method="dense") - 1
    return pd.array(rank.to_numpy(), dtype="Int64")


def _text(values, where, name):
    """Decode an array of str / bytes (``S``, ``U`` or object dtype) into an object array of str."""
    values = np.asarray(values)
    if values.dtype.kind == "U":
        return values.astype(object)
    if values.dtype.kind == "S":
        return np.char.decode(values, "latin1").astype(object)
    if values.dtype.kind == "O":
        out = np.empty(values.shape, dtype=object)
        for i, v in enumerate(values.ravel()):
            if isinstance(v, bytes):
                v = v.decode("latin1")
            if not isinstance(v, str):
                raise PublicDataError(f"{where}: {name} holds {v!r} ({type(v).__name__}); expected text")
            out.flat[i] = v
        return out
    raise PublicDataError(f"{where}: {name} has dtype {values.dtype}; expected text")


def _integers(values, where, name, nullable=False):
    values = np.asarray(values)
    if values.dtype.kind in "iu":
        return pd.array(values.astype(np.int64), dtype="Int64")
    out = []
    for v in values.ravel():
        if isinstance(v, bytes):
            v = v.decode("latin1")
        if v is None or (isinstance(v, str) and v == "None") or (isinstance(v, float) and np.isnan(v)):
            if not nullable:
                raise PublicDataError(f"{where}: meta field {name!r} holds a missing value")
            out.append(None)
            continue
        try:
            number = int(v)
        except (TypeError, ValueError):
            raise PublicDataError(f"{where}: meta field {name!r} holds {v!r}; expected an integer") from None
        if number != v and not isinstance(v, str):
            raise PublicDataError(f"{where}: meta field {name!r} holds {v!r}; expected an integer")
        out.append(number)
    return pd.array(out, dtype="Int64")


def _normalise_keys(data, where):
    if not isinstance(data, dict):
        raise PublicDataError(f"{where}: expected a dict with keys {list(REQUIRED_KEYS)}, got {type(data).__name__}")
    out = {}
    for key, value in data.items():
        out[key.decode("latin1") if isinstance(key, bytes) else key] = value
    missing = [k for k in REQUIRED_KEYS if k not in out]
    if missing:
        raise PublicDataError(f"{where}: missing key(s) {missing}; found {sorted(map(str, out))}")
    return out


def _meta_frame(meta, n, where):
    if not isinstance(meta, np.ndarray) or meta.dtype.names is None:
        raise PublicDataError(f"{where}: 'meta' should be a numpy record array, got {type(meta).__name__}")
    fields = {(f.decode("latin1") if isinstance(f, bytes) else f): f for f in meta.dtype.names}
    missing = [f for f in META_FIELDS if f not in fields]
    if missing:
        raise PublicDataError(f"{where}: 'meta' lacks field(s) {missing}; it has {sorted(fields)}")
    if meta.shape != (n,):
        raise PublicDataError(f"{where}: 'meta' has shape {meta.shape}; expected ({n},) like X")
    column = {name: np.asarray(meta[fields[name]]) for name in META_FIELDS}
    frame = pd.DataFrame({
        name: _text(column[name], where, f"meta field {name!r}")
        for name in ("task", "architecture", "learning_rule", "layer_name")
    })
    frame["batch_size"] = _integers(column["batch_size"], where, "batch_size")
    frame["model_seed"] = _integers(column["model_seed"], where, "model_seed", nullable=True)
    frame["dataset_seed"] = _integers(column["dataset_seed"], where, "dataset_seed", nullable=True)
    frame["start_idxs"] = _integers(column["start_idxs"], where, "start_idxs")
    frame["end_idxs"] = _integers(column["end_idxs"], where, "end_idxs")
    return frame


def _check_public(data, where, strict):
    """Validate the public dict; return X, layer positions and the metadata frame."""
    data = _normalise_keys(data, where)
    X = np.asarray(data["X"])
    if X.ndim != 3 or X.shape[1:] != (N_CHECKPOINTS, len(OBSERVABLE_NAMES)) or X.dtype.kind != "f":
        raise PublicDataError(
            f"{where}: X has shape {X.shape} and dtype {X.dtype}; expected floats of shape "
            f"(n, {N_CHECKPOINTS}, {len(OBSERVABLE_NAMES)})"
        )
    n = X.shape[0]
    obs_keys = list(_text(np.asarray(data["obs_keys"]).ravel(), where, "obs_keys"))
    if obs_keys != list(OBSERVABLE_NAMES):
        diff = next((i for i, (a, b) in enumerate(zip(obs_keys, OBSERVABLE_NAMES)) if a != b), min(len(obs_keys), 45))
        raise PublicDataError(
            f"{where}: obs_keys differ from the 45 known observables (first difference at position {diff}: "
            f"{obs_keys[diff] if diff < len(obs_keys) else None!r} vs "
            f"{OBSERVABLE_NAMES[diff] if diff < 45 else None!r})"
        )
    X_cat = np.asarray(data["X_cat"])
    if X_cat.shape != (n, N_CHECKPOINTS, len(LAYER_POSITIONS)):
        raise PublicDataError(f"{where}: X_cat has shape {X_cat.shape}; expected ({n}, {N_CHECKPOINTS}, 3)")
    first = X_cat[:, :1, :]
    onehot = ((first == 0) | (first == 1)).all(axis=2) & (first.sum(axis=2) == 1)
    if not onehot.all():
        row = int(np.flatnonzero(~onehot.ravel())[0])
        raise PublicDataError(f"{where}: X_cat row {row} is not a one-hot layer position: {X_cat[row, 0].tolist()}")
    varying = (X_cat != first).any(axis=(1, 2))
    if varying.any():
        row = int(np.flatnonzero(varying)[0])
        raise PublicDataError(f"{where}: X_cat row {row} changes along the trajectory; expected a constant position")
    position = np.asarray(LAYER_POSITIONS, dtype=object)[first[:, 0, :].argmax(axis=1)]
    Y = _text(np.asarray(data["Y"]).ravel(), where, "Y")
    if Y.shape != (n,):
        raise PublicDataError(f"{where}: Y has {Y.shape[0]} labels for {n} rows of X")
    unknown = sorted(set(Y) - set(LEARNING_RULES))
    if unknown:
        raise PublicDataError(f"{where}: Y holds unknown learning rule(s) {unknown}; expected {list(LEARNING_RULES)}")
    meta = _meta_frame(data["meta"], n, where)
    mismatch = meta["learning_rule"].to_numpy(dtype=object) != Y
    if mismatch.any():
        row = int(np.flatnonzero(mismatch)[0])
        raise PublicDataError(
            f"{where}: Y and meta learning_rule disagree at row {row} "
            f"({Y[row]!r} vs {meta['learning_rule'].iloc[row]!r})"
        )
    span = (meta["end_idxs"] - meta["start_idxs"]).to_numpy()
    if (span != N_CHECKPOINTS).any() or (meta["start_idxs"] != 0).any():
        row = int(np.flatnonzero((span != N_CHECKPOINTS) | (meta["start_idxs"] != 0).to_numpy())[0])
        raise PublicDataError(
            f"{where}: meta row {row} covers checkpoints {meta['start_idxs'].iloc[row]}..{meta['end_idxs'].iloc[row]}; "
            f"expected 0..{N_CHECKPOINTS}"
        )
    if strict:
        if n != N_PUBLIC_ROWS:
            raise PublicDataError(
                f"{where}: {n} rows, the public dataset has {N_PUBLIC_ROWS} "
                "(pass strict=False / --no-strict to convert a partial file)"
            )
        counts = pd.Series(Y).value_counts()
        if set(counts.index) != set(LEARNING_RULES) or (counts != N_PUBLIC_ROWS // 4).any():
            raise PublicDataError(
                f"{where}: learning rules are not balanced ({counts.to_dict()}); expected "
                f"{N_PUBLIC_ROWS // 4} rows of each of {list(LEARNING_RULES)}"
            )
    return X, position, meta


def public_frame(data, strict=True, where="dataset.pkl"):
    """Turn the unpickled public dict into a tidy table (see :mod:`lrid_analysis.dataset`).

    Parameters
    ----------
    data : dict
        Keys ``X`` (n, 21, 45), ``X_cat`` (n, 21, 3), ``Y`` (n,),
        ``obs_keys`` (45,) and ``meta`` (record array (n,) with the fields
        in :data:`META_FIELDS`); keys may be str or bytes, unknown keys are
        ignored.
    strict : bool
        Also require the full public file: 20,736 rows, 5,184 per rule.
    where : str
        Name of the origin, used in error messages.

    Returns
    -------
    pandas.DataFrame, shape (n * 21, 61)
        One row per (public row, checkpoint), in public row order.

    Raises
    ------
    PublicDataError
        Naming the key, field, row or value that differs from the public format.
    """
    X, position, meta = _check_public(data, where, strict)
    n, n_ckpt, n_obs = X.shape
    run_id = network_id(meta).to_numpy(dtype=object)
    columns = {
        "source": np.full(n, SOURCE, dtype=object),
        "run_id": run_id,
        "task": meta["task"].to_numpy(dtype=object),
        "architecture": meta["architecture"].to_numpy(dtype=object),
        "learning_rule": meta["learning_rule"].to_numpy(dtype=object),
        "batch_size": meta["batch_size"].array,
        "model_seed": meta["model_seed"].array,
        "dataset_seed": meta["dataset_seed"].array,
        "layer_name": meta["layer_name"].to_numpy(dtype=object),
        "layer_index": _layer_index(run_id, meta["layer_name"].to_numpy(dtype=object)),
        "layer_position": position,
    }
    repeat = np.repeat(np.arange(n), n_ckpt)
    frame = pd.DataFrame({name: (values[repeat] if isinstance(values, np.ndarray) else values.take(repeat))
                          for name, values in columns.items()})
    checkpoint = np.tile(np.arange(n_ckpt, dtype=np.int64), n)
    frame["checkpoint"] = checkpoint
    frame["epoch"] = EPOCHS_PER_CHECKPOINT * checkpoint
    frame["unit_fraction"] = 1.0
    frame["noise_std"] = 0.0
    frame["obs_seed"] = np.int64(0)
    with np.errstate(over="ignore"):  # float64 beyond float32 range becomes inf, as the contract stores float32
        values = X.reshape(n * n_ckpt, n_obs).astype(np.float32, copy=False)
    observables = pd.DataFrame(values, columns=list(OBSERVABLE_NAMES))
    return pd.concat([frame, observables], axis=1)


def _sha256(path, chunk_size=1 << 22):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def convert_public(pkl_path, out_dir=None, strict=True, cache=None):
    """Convert ``dataset.pkl`` into tidy Parquet, one file partitioned by source.

    Parameters
    ----------
    pkl_path : str or Path
        The public pickle (read with :func:`safe_load_pickle`).
    out_dir : str or Path, optional
        Output folder; :func:`lrid_analysis.sources.public_path` by default,
        where ``--data auto`` finds it.
    strict : bool
        Require the full public file (see :func:`public_frame`).
    cache : str or Path, optional
        Cache folder override used for the default ``out_dir``.

    Returns
    -------
    Path
        ``<out_dir>/source=nayebi2020/part-0.parquet``, written atomically.
        Its footer records the lrid and library versions, the source file's
        name, size and SHA-256, and the conversion choices.
    """
    pkl_path = Path(pkl_path)
    out_dir = Path(out_dir) if out_dir is not None else public_path(cache)
    data = safe_load_pickle(pkl_path)
    frame = public_frame(data, strict=strict, where=str(pkl_path))
    del data
    import pyarrow

    # footer keys carry a prefix: pyarrow itself uses the key "pandas"
    metadata = {
        "lrid.version": __version__,
        "lrid.python_version": sys.version.split()[0],
        "lrid.numpy_version": np.__version__,
        "lrid.pandas_version": pd.__version__,
        "lrid.pyarrow_version": pyarrow.__version__,
        "lrid.source_file": pkl_path.name,
        "lrid.source_size": pkl_path.stat().st_size,
        "lrid.source_sha256": _sha256(pkl_path),
        "lrid.source_url": PUBLIC_URL,
        "lrid.strict": strict,
        "lrid.epochs_per_checkpoint": EPOCHS_PER_CHECKPOINT,
    }
    paths = write_partitioned(frame, out_dir, partition_by=("source",), name="part-0", metadata=metadata)
    return paths[0]
