"""Tidy Parquet files and the analysis view.

One table holds one row per (network, layer, checkpoint, measurement
condition); each observable statistic is a column. The contract itself
(columns, types, :func:`validate_table`) is :mod:`lrid_analysis.contract`,
whose names this module re-exports. :func:`write_table` and :func:`read_table`
store and read tables (atomic, checksummed Parquet); :func:`load_view` turns
one into the arrays the analysis uses: ``X`` of shape (n_trajectories,
n_checkpoints, n_observables), the layer position one-hot and a
per-trajectory metadata DataFrame.
"""

from __future__ import annotations

import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .atomic import write_atomic
from .contract import (
    _DECLARED,
    _NULLABLE_INT_COLUMNS,
    _OPTIONAL,
    _PER_CHECKPOINT,
    _STATISTIC_COLUMNS,
    _STRING_COLUMNS,
    COLUMNS,
    LAYER_POSITIONS,
    LEARNING_CURVE_COLUMNS,
    LEARNING_RULES,
    META_COLUMNS,
    OPTIONAL_COLUMNS,
    SCHEMA,
    SIZE_COLUMNS,
    TRAJECTORY_KEY,
    Column,
    DatasetError,
    _check_constant_within_trajectories,
    _first_bad,
    _first_rows,
    _plain,
    _trajectory_codes,
    _varying_rows,
    _with_optional_columns,
    check_forward_gradient,
    check_learning_rules,
    validate_table,
)
from . import contract as _contract
from .observables import resolve_observables as _resolve_observables
from .sources import parquet_files, resolve_data

# the contract's public names, re-exported, then this module's own
__all__ = [
    *_contract.__all__,
    "write_table",
    "write_partitioned",
    "read_table",
    "AnalysisView",
    "to_view",
    "load_view",
    "resolve_observables",
]


#: Parquet encoding. Strings are dictionary-encoded; floats are not (their
#: dictionaries are as large as the data and slow reading ~5x) but go through
#: byte-stream-split, which lets zstd compress the smooth high bytes of float32
#: observables (about 40% smaller files than plain lz4, at ~1.2x the read time).
#: Every page carries a CRC-32 of its bytes, checked on every read.
_COMPRESSION = "zstd"


#: zstd levels :func:`write_table` accepts (higher: smaller files, slower writes; reads are as fast).
COMPRESSION_LEVELS = range(1, 23)


def _parquet_options(table, compression_level=None):
    strings = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    floats = [f.name for f in table.schema if pa.types.is_floating(f.type)]
    options = {"compression": _COMPRESSION, "use_dictionary": strings, "use_byte_stream_split": floats,
               "write_page_checksum": True}
    if compression_level is not None:
        options["compression_level"] = int(compression_level)
    return options


def _to_arrow(frame):
    frame = _with_optional_columns(frame)
    extra = [c for c in frame.columns if c not in SCHEMA.names]
    table = pa.Table.from_pandas(frame[list(SCHEMA.names)], schema=SCHEMA, preserve_index=False)
    for name in extra:
        table = table.append_column(name, pa.array(frame[name].to_numpy()))
    return table


def write_table(frame, path, validate=True, metadata=None, extra_rules=None, compression_level=None):
    """Write one table atomically to a Parquet file.

    The table goes to a hidden temporary file in the destination folder,
    which is then renamed over ``path``: an interrupted write never leaves a
    partial file under the final name. The file is zstd-compressed and every
    page carries a CRC-32 checksum that :func:`read_table` verifies.

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
    extra_rules : sequence of str, optional
        Learning-rule names admitted besides :data:`LEARNING_RULES`.
    compression_level : int, optional
        zstd level, 1-22 (default: pyarrow's, 3 at the time of writing).
        Level 19 made the embedded data's files 6-11 % smaller (noisy rows
        ~17 %) at a slower write; reading is as fast.

    Returns
    -------
    Path
    """
    path = Path(path)
    if compression_level is not None and compression_level not in COMPRESSION_LEVELS:
        raise ValueError(f"{path}: compression_level must be an integer from 1 to 22, got {compression_level!r}")
    if validate:
        frame = validate_table(frame, where=str(path), extra_rules=extra_rules)
    table = _to_arrow(frame)
    if metadata:
        merged = dict(table.schema.metadata or {})
        merged.update({str(k).encode(): str(v).encode() for k, v in metadata.items()})
        table = table.replace_schema_metadata(merged)
    write_atomic(path, lambda tmp: pq.write_table(table, tmp, **_parquet_options(table, compression_level)))
    return path


def write_partitioned(frame, root, partition_by=("source",), name=None, metadata=None, extra_rules=None):
    """Write a table under ``root`` as ``col=value/.../name.parquet`` files.

    Partition columns stay inside each file, so every file is a complete
    table on its own.

    Parameters
    ----------
    frame : pandas.DataFrame
    root : str or Path
    partition_by : sequence of str
        Metadata columns that name the folders (a null value names its
        folder ``col=null``).
    name : str, optional
        File stem; a random one when None.
    metadata : dict, optional
        Passed to :func:`write_table`.
    extra_rules : sequence of str, optional
        Learning-rule names admitted besides :data:`LEARNING_RULES`.

    Returns
    -------
    list of Path
    """
    frame = validate_table(frame, where=str(root), extra_rules=extra_rules)
    partition_by = list(partition_by)
    unknown = [c for c in partition_by if c not in META_COLUMNS]
    if unknown:
        raise DatasetError(f"{root}: cannot partition by {unknown}; choose metadata columns from {list(META_COLUMNS)}")
    name = name or uuid.uuid4().hex
    paths = []
    for values, part in frame.groupby(partition_by, sort=True, observed=True, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        folder = Path(root).joinpath(
            *(f"{c}={'null' if pd.isna(v) else v}" for c, v in zip(partition_by, values))
        )
        paths.append(write_table(part, folder / f"{name}.parquet", validate=False, metadata=metadata))
    return paths


_STRING_TYPES = {pa.string(): pd.StringDtype(), pa.large_string(): pd.StringDtype()}


def _declared_type(column, dictionary):
    """Arrow type a contract column is read as (strings dictionary-encoded when asked)."""
    if dictionary and pa.types.is_string(column.type):
        return pa.dictionary(pa.int32(), pa.string())
    return column.type


def _type_fits(found, declared):
    """Whether a file's Arrow type can stand for a declared contract type."""
    if pa.types.is_dictionary(found):
        found = found.value_type
    if pa.types.is_string(declared):
        return pa.types.is_string(found) or pa.types.is_large_string(found)
    if pa.types.is_integer(declared):
        return pa.types.is_integer(found)
    return pa.types.is_floating(found) or pa.types.is_integer(found)


def _conform(table, file, dictionary):
    """Check a file's contract columns (type, nulls) and cast them to the declared types."""
    for index, field in enumerate(table.schema):
        column = _DECLARED.get(field.name)
        if column is None:
            continue
        values = table.column(index)
        if not pa.types.is_null(field.type) and not _type_fits(field.type, column.type):
            raise DatasetError(f"{file}: column {field.name!r} has type {field.type}; the contract needs {column.type}")
        if not column.nullable and values.null_count:
            first = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0])
            raise DatasetError(
                f"{file}: column {field.name!r} has {values.null_count} null value(s) (first at row {first}); "
                "nulls are not allowed there"
            )
        target = _declared_type(column, field.name in dictionary)
        if field.type != target:
            table = table.set_column(index, pa.field(field.name, target, nullable=column.nullable),
                                     values.cast(target))
    return table


def _concat(tables, files):
    """Concatenate per-file tables; a column whose type differs between files is named."""
    try:
        return pa.concat_tables(tables, promote_options="default")
    except (pa.ArrowTypeError, pa.ArrowInvalid) as err:
        seen = {}
        for file, table in zip(files, tables):
            for field in table.schema:
                first = seen.setdefault(field.name, (file, field.type))
                if first[1] != field.type:
                    raise DatasetError(
                        f"column {field.name!r} has type {first[1]} in {first[0]} but {field.type} in {file}; "
                        "write every file with the same column types"
                    ) from err
        raise DatasetError(f"cannot combine the Parquet files {[str(f) for f in files]}: {err}") from err


def _read_error(file, err):
    """A DatasetError naming ``file`` for an Arrow read failure."""
    if "checksum" in str(err).lower():
        return DatasetError(
            f"{file}: corrupt Parquet file: a page checksum does not match its data ({err}); the file changed "
            "after it was written (disk or copy error): restore or regenerate it"
        )
    return DatasetError(f"{file}: not a readable Parquet file ({err})")


def _read_arrow(files, columns=None, extra_columns=False, dictionary=()):
    """Read Parquet files into one Arrow table, rows in file order.

    ``columns`` must all exist in every file (None reads every column);
    ``extra_columns`` adds each file's columns outside the contract;
    ``dictionary`` names string columns to read dictionary-encoded (cheap to
    group, they become pandas categoricals). Page checksums are verified
    (files written without them are read unverified); contract columns are
    checked (type, nulls) and cast to their declared types file by file.
    """
    tables = []
    for file in files:
        try:
            with pq.ParquetFile(file, page_checksum_verification=True) as parquet:
                names = parquet.schema_arrow.names
                if columns is None:
                    wanted = names
                else:
                    missing = [c for c in columns if c not in names and c not in OPTIONAL_COLUMNS]
                    if missing:
                        raise DatasetError(f"{file}: missing column(s) {missing}; the file has {names}")
                    wanted = [c for c in columns if c in names]
                    if extra_columns:
                        wanted += [c for c in names if c not in SCHEMA.names and c not in wanted]
            encoded = [c for c in dictionary if c in wanted]
            table = pq.read_table(file, columns=wanted, read_dictionary=encoded or None,
                                  page_checksum_verification=True)
        except (pa.ArrowException, OSError) as err:
            raise _read_error(file, err) from err
        for column in _OPTIONAL:  # absent (older files, the public data) reads as null
            if column.name not in table.column_names and (columns is None or column.name in columns):
                table = table.append_column(pa.field(column.name, column.type, nullable=True),
                                            pa.nulls(len(table), column.type))
        if columns is not None:
            table = table.select(list(columns) + [c for c in table.column_names if c not in columns])
        tables.append(_conform(table, file, encoded))
    return _concat(tables, files)


def _to_frame(table):
    """Arrow table to DataFrame: strings as ``string``, nullable integers as ``Int64``."""
    frame = table.to_pandas(types_mapper=_STRING_TYPES.get)
    for name in _NULLABLE_INT_COLUMNS:
        if name in frame.columns and frame[name].dtype != "Int64":
            frame[name] = frame[name].astype("Int64")
    return frame


def read_table(path, columns=None, filters=None, validate=False, extra_rules=None):
    """Read a Parquet file or a folder of them into one DataFrame.

    Files are read in sorted path order, rows in file order, so the result is
    deterministic. Hidden files and files starting with ``_`` (temporary
    writes, Parquet side files) are ignored.

    Parameters
    ----------
    path : str or Path
        A ``.parquet`` file or a folder searched recursively.
    columns : list of str, optional
        Columns to read (all when None); every file must have them.
    filters : dict, optional
        ``{column: value or list of values}``; see :func:`apply_filters`.
    validate : bool
        Check the result against the contract.
    extra_rules : sequence of str, optional
        Learning-rule names admitted besides :data:`LEARNING_RULES` (with
        ``validate=True``).

    Returns
    -------
    pandas.DataFrame
        String columns have the ``string`` dtype and the nullable integer
        columns of the contract ``Int64``.

    Raises
    ------
    FileNotFoundError
        When ``path`` holds no Parquet file.
    DatasetError
        Naming the file that is unreadable or corrupt (a page whose checksum
        does not match), lacks a requested column, stores a contract column
        with the wrong type or nulls where none are allowed, or (for a
        folder) the column whose type differs between two files.

    Examples
    --------
    >>> from lrid_analysis.sources import embedded_path
    >>> frame = read_table(embedded_path(), columns=["run_id", "learning_rule", "checkpoint"])
    >>> sorted(frame["learning_rule"].unique())
    ['adam', 'feedback', 'information', 'sgdm']
    """
    frame = _to_frame(_read_arrow(parquet_files(path), columns=columns))
    if filters:
        frame = apply_filters(frame, filters, where=str(path))
    if validate:
        frame = validate_table(frame, where=str(path), extra_rules=extra_rules)
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
    """:func:`lrid_analysis.observables.resolve_observables`, raising :class:`DatasetError`.

    Parameters
    ----------
    observables : None, str or sequence of str
        None or ``"all"``: the 24 admissible statistics; a set name of
        :data:`lrid_analysis.observables.OBSERVABLE_SETS`, a statistic, a comma
        list or a sequence of those.

    Returns
    -------
    list of str
    """
    try:
        return _resolve_observables(observables)
    except ValueError as err:
        raise DatasetError(str(err)) from None


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
        and ``epoch``, the layer sizes (:data:`SIZE_COLUMNS`, null where not
        recorded) and the extra columns constant along trajectories.
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


def _view(frame, names, where, private=False, extra_rules=None):
    """Pivot ``frame`` (filters already applied) into an :class:`AnalysisView`.

    ``private`` says ``frame`` is a temporary of this module, so ``X`` may
    share its memory.
    """
    if len(frame) == 0:
        raise DatasetError(f"{where}: no rows left to build a view from")
    check_forward_gradient(frame, names, where)
    missing = [c for c in TRAJECTORY_KEY + ("checkpoint", "layer_position") + tuple(names) if c not in frame.columns]
    if missing:
        raise DatasetError(f"{where}: missing column(s) {missing}")
    if frame["checkpoint"].isna().any():
        raise DatasetError(f"{where}: null not allowed in {_first_bad(frame, frame['checkpoint'].isna(), 'checkpoint')}")
    checkpoint = frame["checkpoint"].to_numpy(dtype=np.int64)
    if (checkpoint < 0).any():
        raise DatasetError(f"{where}: {_first_bad(frame, checkpoint < 0, 'checkpoint')} must be >= 0")
    codes, n_traj = _trajectory_codes(frame)
    n_ckpt = int(checkpoint.max()) + 1
    cell = codes * n_ckpt + checkpoint  # row's place in the flattened (trajectory, checkpoint) grid
    counts = np.bincount(cell, minlength=n_traj * n_ckpt)
    if not (counts == 1).all():
        bad_traj, bad_ckpt = divmod(int(np.flatnonzero(counts != 1)[0]), n_ckpt)
        row = np.flatnonzero(codes == bad_traj)[0]
        key = {k: _plain(frame[k].iloc[row]) for k in TRAJECTORY_KEY}
        raise DatasetError(
            f"{where}: trajectory {key} has checkpoint {bad_ckpt} {counts[bad_traj * n_ckpt + bad_ckpt]} times "
            f"(every trajectory needs checkpoints 0..{n_ckpt - 1} exactly once)"
        )
    first = _first_rows(codes)
    meta_cols = [c for c in frame.columns if c not in _STATISTIC_COLUMNS and c not in _PER_CHECKPOINT]
    varying = [c for c in meta_cols if c not in META_COLUMNS + SIZE_COLUMNS
               and _varying_rows(frame[c], codes, first).any()]
    if varying:
        warnings.warn(f"{where}: extra column(s) {varying} change along trajectories; left out of the view's meta",
                      UserWarning, stacklevel=3)
        meta_cols = [c for c in meta_cols if c not in varying]
    values = frame[names].to_numpy(dtype=np.float32)
    in_grid_order = bool((cell[1:] > cell[:-1]).all())  # rows already sorted by trajectory then checkpoint
    if in_grid_order:
        X = values.reshape(n_traj, n_ckpt, len(names))
        if not private or not X.flags.writeable:
            X = X.copy()
    else:
        X = np.empty((n_traj, n_ckpt, len(names)), dtype=np.float32)
        X.reshape(-1, len(names))[cell] = values
    epochs = np.full(n_traj * n_ckpt, np.nan)
    if "epoch" in frame.columns:
        epochs[cell] = frame["epoch"].to_numpy(dtype=np.float64, na_value=np.nan)
    meta = _with_optional_columns(frame[meta_cols].iloc[first].reset_index(drop=True), SIZE_COLUMNS)
    if "learning_rule" in meta.columns:
        check_learning_rules(meta["learning_rule"].astype(object).to_numpy(), extra_rules, where)
    unknown = ~meta["layer_position"].isin(LAYER_POSITIONS).to_numpy()
    if unknown.any():
        raise DatasetError(
            f"{where}: {_first_bad(meta, unknown, 'layer_position')} must be one of {LAYER_POSITIONS}"
        )
    _check_constant_within_trajectories(frame, codes, first, where)
    position = meta["layer_position"].astype(object).to_numpy()
    layer_onehot = (position[:, None] == np.array(LAYER_POSITIONS, dtype=object)[None, :]).astype(np.float32)
    return AnalysisView(X=X, layer_onehot=layer_onehot, meta=meta, observables=list(names),
                        epochs=epochs.reshape(n_traj, n_ckpt))


def to_view(frame, observables=None, filters=None, where="table", extra_rules=None):
    """Pivot a tidy table into an :class:`AnalysisView`.

    Trajectories (rows sharing :data:`TRAJECTORY_KEY`) keep the order of
    their first row in ``frame``, so the view of the public dataset follows
    the original file's row order. Every row is kept (no full-access
    filter, unlike :func:`load_view`).

    Parameters
    ----------
    frame : pandas.DataFrame
        Tidy rows (see :data:`COLUMNS`).
    observables : see :func:`resolve_observables`
    filters : dict, optional
        Row filters, see :func:`apply_filters`.
    where : str
        Origin named in error messages.
    extra_rules : sequence of str, optional
        Learning-rule names admitted besides :data:`LEARNING_RULES`.

    Returns
    -------
    AnalysisView

    Raises
    ------
    DatasetError
        When a trajectory lacks a checkpoint or has it twice, a
        per-trajectory column (``learning_rule``, ``layer_position``, ...)
        changes between its checkpoints, a column is missing, a layer
        position is not one of :data:`LAYER_POSITIONS` or a learning rule is
        unknown (see :func:`check_learning_rules`).
    """
    names = resolve_observables(observables)
    if filters:
        frame = apply_filters(frame, filters, where=where)
    return _view(frame, names, where, extra_rules=extra_rules)


def _full_access_rows(frame, where):
    """Rows measured with every unit and no noise (``unit_fraction == 1``, ``noise_std == 0``)."""
    keep = ((frame["unit_fraction"] == 1.0) & (frame["noise_std"] == 0.0)).to_numpy(dtype=bool, na_value=False)
    if not keep.any():
        raise DatasetError(
            f"{where}: no full-access trajectories (unit_fraction = 1, noise_std = 0) in the selected rows; "
            "pass full_access=False to load unit-subsampled or noisy measurements"
        )
    return frame if keep.all() else frame.loc[keep].reset_index(drop=True)


def load_view(source="auto", observables=None, filters=None, full_access=True, extra_rules=None, cache=None):
    """Read a data source and return its :class:`AnalysisView`.

    Only the metadata columns (layer sizes included), extra columns and the
    requested observables are read; the result equals ``to_view(read_table(path), observables,
    filters)`` restricted to the full-access rows.

    Parameters
    ----------
    source : {"auto", "public", "embedded"}, str or path-like
        A named source as every command's ``--data`` takes it (see
        :func:`lrid_analysis.sources.resolve_data`: ``auto`` is the converted
        public dataset when present, else the embedded one), or a
        ``.parquet`` file or folder (see :func:`read_table`).
    observables : see :func:`resolve_observables`
    filters : dict, optional
        Row filters, see :func:`apply_filters`.
    full_access : bool
        Keep only trajectories measured with all units and without noise
        (``unit_fraction == 1`` and ``noise_std == 0``), as every experiment
        except ``unit_noise`` does. False keeps the subsampled and noisy
        re-measurements too (each is a trajectory of its own).
    extra_rules : sequence of str, optional
        Learning-rule names admitted besides :data:`LEARNING_RULES`.
    cache : str or Path, optional
        Cache folder for the named sources (see
        :func:`lrid_analysis.sources.cache_dir`).

    Returns
    -------
    AnalysisView

    Raises
    ------
    FileNotFoundError
        When the source holds no Parquet data.
    DatasetError
        See :func:`read_table` and :func:`to_view`; also when no full-access
        trajectory is left.

    Examples
    --------
    >>> view = load_view("embedded", observables="act")
    >>> view.X.shape[1:]
    (21, 8)
    >>> bool((view.meta["noise_std"] == 0).all())
    True
    """
    path, _ = resolve_data(source, cache=cache)
    where = str(path)
    names = resolve_observables(observables)
    # String metadata is read dictionary-encoded, so grouping rows into
    # trajectories works on integer codes; only the one row kept per
    # trajectory is turned back into strings.
    table = _read_arrow(parquet_files(path), columns=list(META_COLUMNS + SIZE_COLUMNS) + names, extra_columns=True,
                        dictionary=_STRING_COLUMNS)
    frame = _to_frame(table)
    del table
    if filters:
        frame = apply_filters(frame, filters, where=where)
    if full_access:
        frame = _full_access_rows(frame, where)
    view = _view(frame, names, where, private=True, extra_rules=extra_rules)
    for column in _STRING_COLUMNS:
        if isinstance(view.meta[column].dtype, pd.CategoricalDtype):
            view.meta[column] = view.meta[column].astype(pd.StringDtype())
    return view
