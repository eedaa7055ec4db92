"""The tidy Parquet data contract and the analysis view.

One table holds one row per (network, layer, checkpoint, measurement
condition); each observable statistic is a column (see :data:`COLUMNS`).
:func:`load_view` turns such a table into the arrays the analysis uses:
``X`` of shape (n_trajectories, n_checkpoints, n_observables), the layer
position one-hot and a per-trajectory metadata DataFrame.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .observables import MEASURE_GROUPS, OBSERVABLE_NAMES

__all__ = [
    "Column",
    "COLUMNS",
    "META_COLUMNS",
    "TRAJECTORY_KEY",
    "LAYER_POSITIONS",
    "SCHEMA",
    "DatasetError",
    "validate_table",
    "write_table",
    "write_partitioned",
    "read_table",
    "AnalysisView",
    "to_view",
    "load_view",
    "resolve_observables",
]


class DatasetError(ValueError):
    """A table or file that breaks the data contract."""


@dataclass(frozen=True)
class Column:
    """One declared column: name, Arrow type, whether nulls are allowed, meaning."""

    name: str
    type: pa.DataType
    nullable: bool
    doc: str


LAYER_POSITIONS = ("early", "middle", "deep")

_META = (
    Column("source", pa.string(), False, "nayebi2020 for the public data, else the generator preset"),
    Column("run_id", pa.string(), False, "stable id of one trained network"),
    Column("task", pa.string(), False, "training task"),
    Column("architecture", pa.string(), False, "network architecture"),
    Column("learning_rule", pa.string(), False, "adam, sgdm, feedback (FA) or information (IA)"),
    Column("batch_size", pa.int64(), False, "training batch size"),
    Column("model_seed", pa.int64(), True, "initialisation seed (null: unseeded)"),
    Column("dataset_seed", pa.int64(), True, "data order seed (null: unseeded)"),
    Column("layer_name", pa.string(), False, "layer name"),
    Column("layer_index", pa.int64(), True, "depth order within the network"),
    Column("layer_position", pa.string(), False, "early, middle or deep"),
    Column("checkpoint", pa.int64(), False, "0 .. n_checkpoints - 1"),
    Column("epoch", pa.float64(), True, "training progress in epochs"),
    Column("unit_fraction", pa.float64(), False, "fraction of units measured (1 = all)"),
    Column("noise_std", pa.float64(), False, "measurement noise std (0 = none)"),
    Column("obs_seed", pa.int64(), False, "seed of the unit subsample and the noise"),
)

#: Every column of the contract, in order: metadata then the 45 observables.
COLUMNS = _META + tuple(
    Column(name, pa.float32(), True, "observable statistic") for name in OBSERVABLE_NAMES
)
META_COLUMNS = tuple(c.name for c in _META)
#: Columns that identify one trajectory (all checkpoints of one measured layer).
TRAJECTORY_KEY = ("source", "run_id", "layer_name", "unit_fraction", "noise_std", "obs_seed")
SCHEMA = pa.schema([pa.field(c.name, c.type, nullable=c.nullable) for c in COLUMNS])

_INT_COLUMNS = [c.name for c in _META if pa.types.is_integer(c.type)]
_FLOAT_COLUMNS = [c.name for c in _META if pa.types.is_floating(c.type)]
_STRING_COLUMNS = [c.name for c in _META if pa.types.is_string(c.type)]


def _first_bad(frame, mask, column):
    row = frame.index[np.flatnonzero(np.asarray(mask))[0]]
    return f"column {column!r}, row {row}: value {frame.at[row, column]!r}"


def validate_table(frame, where="table"):
    """Check a DataFrame against the contract and return it with declared dtypes.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per (network, layer, checkpoint, condition). Extra columns
        are kept as they are.
    where : str
        Name of the origin (a file path, say) used in error messages.

    Returns
    -------
    pandas.DataFrame
        A copy with integer, float, string and float32 observable columns.

    Raises
    ------
    DatasetError
        Naming the missing column, or the column, row and value that break it.
    """
    missing = [c.name for c in COLUMNS if c.name not in frame.columns]
    if missing:
        raise DatasetError(f"{where}: missing column(s) {missing}")
    out = frame.copy()
    for column in _META:
        values = out[column.name]
        if not column.nullable and values.isna().any():
            raise DatasetError(f"{where}: null not allowed in {_first_bad(out, values.isna(), column.name)}")
        if column.name in _INT_COLUMNS:
            numeric = pd.to_numeric(values, errors="coerce")
            bad = numeric.isna() & values.notna() | (numeric.notna() & (numeric % 1 != 0))
            if bad.any():
                raise DatasetError(f"{where}: expected integers in {_first_bad(out, bad, column.name)}")
            out[column.name] = numeric.astype("Int64" if column.nullable else "int64")
        elif column.name in _FLOAT_COLUMNS:
            numeric = pd.to_numeric(values, errors="coerce")
            bad = numeric.isna() & values.notna()
            if bad.any():
                raise DatasetError(f"{where}: expected numbers in {_first_bad(out, bad, column.name)}")
            out[column.name] = numeric.astype("float64")
        else:
            out[column.name] = values.astype("string")
    checks = (
        ("layer_position", ~out["layer_position"].isin(LAYER_POSITIONS), f"must be one of {LAYER_POSITIONS}"),
        ("checkpoint", out["checkpoint"] < 0, "must be >= 0"),
        ("batch_size", out["batch_size"] <= 0, "must be > 0"),
        ("unit_fraction", ~((out["unit_fraction"] > 0) & (out["unit_fraction"] <= 1)), "must be in (0, 1]"),
        ("noise_std", ~(out["noise_std"] >= 0), "must be >= 0"),
    )
    for name, bad, rule in checks:
        if bad.any():
            raise DatasetError(f"{where}: {_first_bad(out, bad, name)} {rule}")
    for name in OBSERVABLE_NAMES:
        values = pd.to_numeric(out[name], errors="coerce")
        bad = values.isna() & out[name].notna()
        if bad.any():
            raise DatasetError(f"{where}: expected numbers in {_first_bad(out, bad, name)}")
        out[name] = values.astype("float32")
    duplicated = out.duplicated(list(TRAJECTORY_KEY) + ["checkpoint"])
    if duplicated.any():
        row = out.index[np.flatnonzero(duplicated.to_numpy())[0]]
        key = {k: out.at[row, k] for k in TRAJECTORY_KEY + ("checkpoint",)}
        raise DatasetError(f"{where}: duplicated trajectory checkpoint at row {row}: {key}")
    return out


def _to_arrow(frame):
    extra = [c for c in frame.columns if c not in SCHEMA.names]
    table = pa.Table.from_pandas(frame[list(SCHEMA.names)], schema=SCHEMA, preserve_index=False)
    for name in extra:
        table = table.append_column(name, pa.array(frame[name].to_numpy()))
    return table


def write_table(frame, path, validate=True, metadata=None):
    """Write one table atomically to a Parquet file.

    The table goes to a hidden temporary file in the destination folder,
    which is then renamed over ``path``: an interrupted write never leaves a
    partial file under the final name.

    Parameters
    ----------
    frame : pandas.DataFrame
        Rows that follow the contract.
    path : str or Path
        Destination ``.parquet`` file; parent folders are created.
    validate : bool
        Run :func:`validate_table` first.
    metadata : dict of str to str, optional
        Key-value metadata stored in the Parquet footer (versions, command).

    Returns
    -------
    Path
    """
    path = Path(path)
    if validate:
        frame = validate_table(frame, where=str(path))
    table = _to_arrow(frame)
    if metadata:
        merged = dict(table.schema.metadata or {})
        merged.update({str(k).encode(): str(v).encode() for k, v in metadata.items()})
        table = table.replace_schema_metadata(merged)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_partitioned(frame, root, partition_by=("source",), name=None, metadata=None):
    """Write a table under ``root`` as ``col=value/.../name.parquet`` files.

    Partition columns stay inside each file, so every file is a complete
    table on its own.

    Parameters
    ----------
    frame : pandas.DataFrame
    root : str or Path
    partition_by : sequence of str
        Metadata columns that name the folders.
    name : str, optional
        File stem; a random one when None.
    metadata : dict, optional
        Passed to :func:`write_table`.

    Returns
    -------
    list of Path
    """
    frame = validate_table(frame, where=str(root))
    name = name or uuid.uuid4().hex
    paths = []
    for values, part in frame.groupby(list(partition_by), sort=True, observed=True):
        values = values if isinstance(values, tuple) else (values,)
        folder = Path(root).joinpath(*(f"{c}={v}" for c, v in zip(partition_by, values)))
        paths.append(write_table(part, folder / f"{name}.parquet", validate=False, metadata=metadata))
    return paths


def _parquet_files(path):
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"no Parquet data at {path}")
    files = sorted(
        p for p in path.rglob("*.parquet") if not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
    )
    if not files:
        raise FileNotFoundError(f"no .parquet files under {path}")
    return files


def read_table(path, columns=None, filters=None, validate=False):
    """Read a Parquet file or a folder of them into one DataFrame.

    Files are read in sorted path order, rows in file order, so the result is
    deterministic. Hidden files (temporary writes) are ignored.

    Parameters
    ----------
    path : str or Path
        A ``.parquet`` file or a folder searched recursively.
    columns : list of str, optional
        Columns to read (all when None).
    filters : dict, optional
        ``{column: value or list of values}``; see :func:`apply_filters`.
    validate : bool
        Check the result against the contract.

    Returns
    -------
    pandas.DataFrame
    """
    files = _parquet_files(path)
    tables = []
    for file in files:
        try:
            tables.append(pq.read_table(file, columns=columns))
        except (pa.ArrowInvalid, OSError) as err:
            raise DatasetError(f"{file}: not a readable Parquet file ({err})") from err
        except KeyError as err:
            raise DatasetError(f"{file}: missing column {err}") from err
    table = pa.concat_tables(tables, promote_options="default")
    frame = table.to_pandas(types_mapper={pa.string(): pd.StringDtype(), pa.large_string(): pd.StringDtype()}.get)
    if filters:
        frame = apply_filters(frame, filters, where=str(path))
    if validate:
        frame = validate_table(frame, where=str(path))
    return frame


def apply_filters(frame, filters, where="table"):
    """Keep the rows whose columns take the given values.

    Parameters
    ----------
    frame : pandas.DataFrame
    filters : dict
        ``{column: value or list of values}``.
    where : str
        Origin named in error messages.

    Raises
    ------
    DatasetError
        For an unknown column or a value that never occurs (listing those that do).
    """
    mask = np.ones(len(frame), dtype=bool)
    for column, wanted in filters.items():
        if column not in frame.columns:
            raise DatasetError(f"{where}: cannot filter on unknown column {column!r}; columns are {list(frame.columns)}")
        wanted = list(wanted) if isinstance(wanted, (list, tuple, set, np.ndarray, pd.Index)) else [wanted]
        present = frame[column].dropna().unique()
        lookup = {str(v): v for v in present}
        resolved = []
        for value in wanted:
            if value in set(present) or value is None:
                resolved.append(value)
            elif str(value) in lookup:
                resolved.append(lookup[str(value)])
            else:
                raise DatasetError(
                    f"{where}: no rows with {column} = {value!r}; values present: {sorted(map(str, present))}"
                )
        keep = frame[column].isin([v for v in resolved if v is not None]).to_numpy()
        if None in resolved:
            keep |= frame[column].isna().to_numpy()
        mask &= keep
    return frame.loc[mask].reset_index(drop=True)


def resolve_observables(observables):
    """Turn a group name or a list of names into a list of observable names.

    Parameters
    ----------
    observables : None, str or sequence of str
        None or ``"all"``: the 24 admissible statistics; ``"weight"``,
        ``"act"``, ``"grad"``: their admissible statistics; ``"all45"``: all
        45; a sequence: those names.
    """
    if observables is None:
        return list(MEASURE_GROUPS["all"])
    if isinstance(observables, str):
        if observables == "all45":
            return list(OBSERVABLE_NAMES)
        if observables in MEASURE_GROUPS:
            return list(MEASURE_GROUPS[observables])
        observables = [o.strip() for o in observables.split(",")]
    unknown = [o for o in observables if o not in OBSERVABLE_NAMES]
    if unknown:
        raise DatasetError(
            f"unknown observable(s) {unknown}; use a group ({', '.join(list(MEASURE_GROUPS) + ['all45'])}) "
            f"or names from: {', '.join(OBSERVABLE_NAMES)}"
        )
    return list(observables)


@dataclass
class AnalysisView:
    """Trajectories as arrays, ready for splitting and classification.

    Attributes
    ----------
    X : ndarray, shape (n_trajectories, n_checkpoints, n_observables)
        Observable trajectories (float32).
    layer_onehot : ndarray, shape (n_trajectories, 3)
        One-hot layer position in ``LAYER_POSITIONS`` order.
    meta : pandas.DataFrame, shape (n_trajectories, n_meta)
        One row per trajectory: the metadata columns except ``checkpoint``
        and ``epoch``.
    observables : list of str
        Names of the last axis of ``X``.
    epochs : ndarray, shape (n_trajectories, n_checkpoints)
        Training progress at each checkpoint (NaN when unknown).
    """

    X: np.ndarray
    layer_onehot: np.ndarray
    meta: pd.DataFrame
    observables: list
    epochs: np.ndarray

    @property
    def y(self):
        """Learning-rule labels, shape (n_trajectories,)."""
        return self.meta["learning_rule"].to_numpy(dtype=object)

    def __len__(self):
        return self.X.shape[0]

    def subset(self, index):
        """A view of the trajectories at ``index`` (integer array or boolean mask)."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return AnalysisView(
            X=self.X[index],
            layer_onehot=self.layer_onehot[index],
            meta=self.meta.iloc[index].reset_index(drop=True),
            observables=list(self.observables),
            epochs=self.epochs[index],
        )

    def select_observables(self, observables):
        """A view restricted to some observables (see :func:`resolve_observables`)."""
        names = resolve_observables(observables)
        missing = [n for n in names if n not in self.observables]
        if missing:
            raise DatasetError(f"observable(s) {missing} not in this view; it has {self.observables}")
        cols = [self.observables.index(n) for n in names]
        return AnalysisView(self.X[:, :, cols], self.layer_onehot, self.meta, names, self.epochs)


def to_view(frame, observables=None, filters=None, where="table"):
    """Pivot a tidy table into an :class:`AnalysisView`.

    Trajectories keep the order of their first row in ``frame``, so the view
    of the public dataset follows the original file's row order.

    Parameters
    ----------
    frame : pandas.DataFrame
        Tidy rows (see :data:`COLUMNS`).
    observables : see :func:`resolve_observables`
    filters : dict, optional
        Row filters, see :func:`apply_filters`.
    where : str
        Origin named in error messages.

    Raises
    ------
    DatasetError
        When a trajectory lacks a checkpoint or has it twice.
    """
    names = resolve_observables(observables)
    if filters:
        frame = apply_filters(frame, filters, where=where)
    if len(frame) == 0:
        raise DatasetError(f"{where}: no rows left to build a view from")
    missing = [c for c in TRAJECTORY_KEY + ("checkpoint",) if c not in frame.columns]
    if missing:
        raise DatasetError(f"{where}: missing column(s) {missing}")
    codes = frame.groupby(list(TRAJECTORY_KEY), sort=False, dropna=False).ngroup().to_numpy()
    checkpoint = frame["checkpoint"].to_numpy(dtype=np.int64)
    n_traj, n_ckpt = int(codes.max()) + 1, int(checkpoint.max()) + 1
    counts = np.zeros((n_traj, n_ckpt), dtype=np.int64)
    np.add.at(counts, (codes, checkpoint), 1)
    if not (counts == 1).all():
        bad_traj, bad_ckpt = np.argwhere(counts != 1)[0]
        row = np.flatnonzero(codes == bad_traj)[0]
        key = {k: frame[k].iloc[row] for k in TRAJECTORY_KEY}
        raise DatasetError(
            f"{where}: trajectory {key} has checkpoint {bad_ckpt} {counts[bad_traj, bad_ckpt]} times "
            f"(every trajectory needs checkpoints 0..{n_ckpt - 1} exactly once)"
        )
    X = np.empty((n_traj, n_ckpt, len(names)), dtype=np.float32)
    X[codes, checkpoint] = frame[names].to_numpy(dtype=np.float32)
    epochs = np.full((n_traj, n_ckpt), np.nan)
    if "epoch" in frame.columns:
        epochs[codes, checkpoint] = frame["epoch"].to_numpy(dtype=np.float64, na_value=np.nan)
    first = np.zeros(n_traj, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    meta_cols = [c for c in frame.columns if c not in OBSERVABLE_NAMES and c not in ("checkpoint", "epoch")]
    meta = frame[meta_cols].iloc[first].reset_index(drop=True)
    position = meta["layer_position"].astype(object).to_numpy()
    layer_onehot = (position[:, None] == np.array(LAYER_POSITIONS)[None, :]).astype(np.float32)
    return AnalysisView(X=X, layer_onehot=layer_onehot, meta=meta, observables=names, epochs=epochs)


def load_view(path, observables=None, filters=None):
    """Read a tidy Parquet file or folder and return its :class:`AnalysisView`.

    Only the metadata columns and the requested observables are read.
    """
    names = resolve_observables(observables)
    schema_names = pq.read_schema(_parquet_files(path)[0]).names
    extra = [c for c in schema_names if c not in SCHEMA.names]
    columns = list(META_COLUMNS) + names + extra
    frame = read_table(path, columns=columns)
    return to_view(frame, observables=names, filters=filters, where=str(path))
