"""The public dataset of Nayebi et al. (2020): schema checks and conversion to tidy Parquet.

The authors published their observable statistics as one Python 2.7 pickle,
``dataset.pkl`` (about 511 MB). :mod:`lrid_analysis.download` fetches it
(also the command line front end, ``python -m lrid_analysis.download``),
:mod:`lrid_analysis.unpickle` reads it without trusting it, and this module
checks it against what is known about the file and converts it to the tidy
Parquet contract of :mod:`lrid_analysis.dataset` (:func:`public_frame`,
:func:`convert_public`).

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

import hashlib
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .dataset import LAYER_POSITIONS, DatasetError, write_partitioned
from .observables import OBSERVABLE_NAMES
from .sources import public_path
from .synthetic import network_id
from .unpickle import safe_load_pickle

__all__ = [
    "SOURCE",
    "N_PUBLIC_ROWS",
    "N_CHECKPOINTS",
    "EPOCHS_PER_CHECKPOINT",
    "LEARNING_RULES",
    "REQUIRED_KEYS",
    "META_FIELDS",
    "PublicDataError",
    "file_sha256",
    "layer_depth_key",
    "public_frame",
    "convert_public",
]

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
#: The largest array of the public file (X: rows x checkpoints x observables); strict
#: conversion refuses any larger array before it is filled.
_MAX_PUBLIC_ELEMENTS = N_PUBLIC_ROWS * N_CHECKPOINTS * len(OBSERVABLE_NAMES)
_PARQUET_MAGIC = b"PAR1"


class PublicDataError(DatasetError):
    """The pickle does not look like the public dataset."""


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

    Examples
    --------
    >>> layer_depth_key("block_group1_0/conv0") < layer_depth_key("block_group1_0/conv1") < layer_depth_key("dense")
    True
    >>> layer_depth_key("mystery") is None
    True
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
    # every shape is checked before anything proportional to it is computed
    if strict and n != N_PUBLIC_ROWS:
        raise PublicDataError(
            f"{where}: {n} rows, the public dataset has {N_PUBLIC_ROWS} "
            "(pass strict=False / --no-strict to convert a partial file)"
        )
    raw_keys, X_cat, raw_Y = (np.asarray(data[key]) for key in ("obs_keys", "X_cat", "Y"))
    if raw_keys.size != len(OBSERVABLE_NAMES):
        raise PublicDataError(f"{where}: obs_keys has {raw_keys.size} names; expected the {len(OBSERVABLE_NAMES)} "
                              "known observables")
    if X_cat.shape != (n, N_CHECKPOINTS, len(LAYER_POSITIONS)):
        raise PublicDataError(f"{where}: X_cat has shape {X_cat.shape}; expected ({n}, {N_CHECKPOINTS}, 3)")
    if raw_Y.size != n:
        raise PublicDataError(f"{where}: Y has {raw_Y.size} labels for {n} rows of X")
    if isinstance(data["meta"], np.ndarray) and data["meta"].shape != (n,):
        raise PublicDataError(f"{where}: 'meta' has shape {data['meta'].shape}; expected ({n},) like X")
    obs_keys = list(_text(raw_keys.ravel(), where, "obs_keys"))
    if obs_keys != list(OBSERVABLE_NAMES):
        diff = next(i for i, (a, b) in enumerate(zip(obs_keys, OBSERVABLE_NAMES)) if a != b)
        raise PublicDataError(
            f"{where}: obs_keys differ from the 45 known observables (first difference at position {diff}: "
            f"{obs_keys[diff]!r} vs {OBSERVABLE_NAMES[diff]!r})"
        )
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
    Y = _text(raw_Y.ravel(), where, "Y")
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


def file_sha256(path, chunk_size=1 << 22):
    """Hex SHA-256 digest of a file, read in chunks of ``chunk_size`` bytes.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile() as file:
    ...     _ = file.write(b"abc"); file.flush()
    ...     file_sha256(file.name)[:16]
    'ba7816bf8f01cfea'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _refuse_parquet(path):
    with open(path, "rb") as file:
        head = file.read(len(_PARQUET_MAGIC))
    if head == _PARQUET_MAGIC:
        raise PublicDataError(
            f"{path} is already a Parquet file, not the public dataset.pkl: nothing to convert. "
            f"Use it directly (e.g. --data {path}); if it is tidy lrid data, load_view reads it"
        )


def convert_public(pkl_path, out_dir=None, strict=True, cache=None, *, sha256=None, source_url=None):
    """Convert ``dataset.pkl`` into tidy Parquet, one file partitioned by source.

    Parameters
    ----------
    pkl_path : str or Path
        The public pickle (read with :func:`lrid_analysis.unpickle.safe_load_pickle`).
    out_dir : str or Path, optional
        Output folder; :func:`lrid_analysis.sources.public_path` by default,
        where ``--data auto`` finds it.
    strict : bool
        Require the full public file (see :func:`public_frame`); any array
        larger than the public ``X`` is refused while unpickling, before it
        is filled.
    cache : str or Path, optional
        Cache folder override used for the default ``out_dir``.
    sha256 : str, optional
        Expected hex SHA-256 of ``pkl_path``; a different file is refused
        before it is unpickled.
    source_url : str, optional
        Where the file was downloaded from, recorded in the footer (none for
        a local file).

    Returns
    -------
    Path
        ``<out_dir>/source=nayebi2020/part-0.parquet``, written atomically.
        Its footer records the lrid and library versions, where the data came
        from (``lrid.source_url`` when downloaded, ``lrid.source_path``), the
        source file's size and SHA-256, whether that digest was checked
        against an expected one, and the conversion choices.

    Raises
    ------
    PublicDataError
        A Parquet file, a digest that differs from ``sha256``, or content that
        differs from the public format.
    lrid_analysis.unpickle.UnsafePickleError, lrid_analysis.unpickle.UnreadablePickleError
        From unpickling.
    """
    pkl_path = Path(pkl_path)
    out_dir = Path(out_dir) if out_dir is not None else public_path(cache)
    if not pkl_path.is_file():
        raise FileNotFoundError(f"no such file: {pkl_path}")
    _refuse_parquet(pkl_path)
    digest = file_sha256(pkl_path)
    if sha256 is not None and digest != sha256.strip().lower():
        raise PublicDataError(
            f"{pkl_path}: SHA-256 is {digest}, expected {sha256.strip().lower()}: this is not the expected file "
            "(corrupt, changed or a different version); nothing was converted"
        )
    data = safe_load_pickle(pkl_path, max_array_elements=_MAX_PUBLIC_ELEMENTS if strict else None)
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
        "lrid.source_path": str(pkl_path.resolve()),
        "lrid.source_file": pkl_path.name,
        "lrid.source_size": pkl_path.stat().st_size,
        "lrid.source_sha256": digest,
        "lrid.source_sha256_verified": sha256 is not None,
        "lrid.strict": strict,
        "lrid.epochs_per_checkpoint": EPOCHS_PER_CHECKPOINT,
    }
    if source_url is not None:
        metadata["lrid.source_url"] = source_url
    paths = write_partitioned(frame, out_dir, partition_by=("source",), name="part-0", metadata=metadata)
    return paths[0]
