"""The tidy data contract: declared columns, their types and meaning, and the checks of a table.

One table holds one row per (network, layer, checkpoint, measurement
condition); each observable statistic is a column (see :data:`COLUMNS`).
Some columns are optional (:data:`OPTIONAL_COLUMNS`: the forward-Jacobian
gradient, the learning curve, the layer sizes): a table without them reads
as all null. :func:`validate_table` checks a DataFrame against the contract.
Reading, writing and the analysis view are :mod:`lrid_analysis.dataset`,
which re-exports every name here.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from .observables import FORWARD_GRADIENT_NAMES, OBSERVABLE_NAMES

__all__ = [
    "Column",
    "COLUMNS",
    "META_COLUMNS",
    "OPTIONAL_COLUMNS",
    "LEARNING_CURVE_COLUMNS",
    "SIZE_COLUMNS",
    "TRAJECTORY_KEY",
    "LAYER_POSITIONS",
    "LEARNING_RULES",
    "SCHEMA",
    "DatasetError",
    "check_learning_rules",
    "check_forward_gradient",
    "validate_table",
]


class DatasetError(ValueError):
    """A table or file that breaks the data contract."""


@dataclass(frozen=True)
class Column:
    """One declared column: name, Arrow type, whether nulls are allowed, meaning, and whether it is optional.

    An optional column may be absent from a table or file (the public data,
    older files): it then reads as all null.
    """

    name: str
    type: pa.DataType
    nullable: bool
    doc: str
    optional: bool = False


LAYER_POSITIONS = ("early", "middle", "deep")
#: Learning-rule names the contract knows: those of the public dataset, which
#: lrid_generate uses too (``information`` is Information Alignment, IA;
#: ``feedback`` is Feedback Alignment, FA). Other names need ``extra_rules=``.
LEARNING_RULES = ("adam", "sgdm", "information", "feedback")
_RULE_ALIASES = {"sgd": "sgdm", "fa": "feedback", "ia": "information", "feedback_alignment": "feedback",
                 "information_alignment": "information"}

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
_OBSERVABLES = tuple(Column(name, pa.float32(), True, "observable statistic") for name in OBSERVABLE_NAMES)

# Optional columns (absent in a table or file, such as the public data or the shipped v1 embedded
# data, they read as null), recorded by lrid_generate:
#: the forward-Jacobian layer-wise change, observables like the 45 (``observables.FORWARD_GRADIENT_NAMES``);
_FORWARD = tuple(
    Column(name, pa.float32(), True, "layer-wise change through the forward weights W (gradavg reads B under FA/IA)",
           optional=True)
    for name in FORWARD_GRADIENT_NAMES
)
#: the network's learning curve at each checkpoint (per-checkpoint values, not trajectory metadata);
_CURVE = (
    Column("train_accuracy", pa.float64(), True, "mean training accuracy over the steps since the previous checkpoint",
           optional=True),
    Column("val_accuracy", pa.float64(), True, "validation accuracy at this checkpoint", optional=True),
    Column("train_loss", pa.float64(), True, "mean training loss over the steps since the previous checkpoint",
           optional=True),
    Column("val_loss", pa.float64(), True, "validation loss at this checkpoint", optional=True),
)
#: the layer's size, the same at every checkpoint (trajectory metadata, in the view's ``meta``).
_SIZES = (
    Column("n_inputs", pa.int64(), True, "input units of the layer per example", optional=True),
    Column("n_outputs", pa.int64(), True, "output units of the layer per example", optional=True),
    Column("n_weights", pa.int64(), True, "entries of the layer's forward kernel", optional=True),
)
LEARNING_CURVE_COLUMNS = tuple(c.name for c in _CURVE)
SIZE_COLUMNS = tuple(c.name for c in _SIZES)

#: Every column of the contract, in order: metadata, the 45 observables, then the optional columns:
#: the forward-Jacobian gradient, the learning curve and the layer size.
COLUMNS = _META + _OBSERVABLES + _FORWARD + _CURVE + _SIZES
META_COLUMNS = tuple(c.name for c in _META)
#: Columns a table may lack (they read as null): ``FORWARD_GRADIENT_NAMES``, ``LEARNING_CURVE_COLUMNS``,
#: ``SIZE_COLUMNS``.
OPTIONAL_COLUMNS = tuple(c.name for c in COLUMNS if c.optional)
#: Columns that identify one trajectory (all checkpoints of one measured layer).
TRAJECTORY_KEY = ("source", "run_id", "layer_name", "unit_fraction", "noise_std", "obs_seed")
SCHEMA = pa.schema([pa.field(c.name, c.type, nullable=c.nullable) for c in COLUMNS])

#: Observable columns (float32 statistics): the 45 public ones and the optional forward gradient.
_STATISTIC_COLUMNS = tuple(c.name for c in _OBSERVABLES + _FORWARD)
#: Columns typed (and range-checked) one by one in validate_table: everything but the statistics.
_TYPED = _META + _CURVE + _SIZES
_INT_COLUMNS = [c.name for c in _TYPED if pa.types.is_integer(c.type)]
_FLOAT_COLUMNS = [c.name for c in _TYPED if pa.types.is_floating(c.type)]
_STRING_COLUMNS = [c.name for c in _META if pa.types.is_string(c.type)]
#: Values that change along a trajectory (never trajectory metadata).
_PER_CHECKPOINT = ("checkpoint", "epoch", *LEARNING_CURVE_COLUMNS)


def _plain(value):
    """A numpy scalar as the Python value, so messages read ``12.5``, not ``np.float64(12.5)``."""
    return value.item() if isinstance(value, np.generic) else value


def _first_bad(frame, mask, column):
    position = np.flatnonzero(np.asarray(mask))[0]
    return f"column {column!r}, row {_plain(frame.index[position])}: value {_plain(frame[column].iloc[position])!r}"


def check_learning_rules(rules, extra_rules=None, where="table"):
    """Refuse learning-rule names that are not known.

    Parameters
    ----------
    rules : array-like of str
        Learning-rule values (repeats allowed).
    extra_rules : sequence of str, optional
        Names admitted besides :data:`LEARNING_RULES`, for your own data
        (say ``["kp", "hebbian"]``).
    where : str
        Origin named in error messages.

    Raises
    ------
    DatasetError
        Naming the unknown value, with the close known name when there is
        one (``"sgd"``: did you mean ``"sgdm"``?).

    Examples
    --------
    >>> check_learning_rules(["adam", "feedback"])
    >>> check_learning_rules(["Adam "])
    Traceback (most recent call last):
    ...
    lrid_analysis.contract.DatasetError: table: unknown learning rule 'Adam ' (did you mean 'adam'?); known rules are ['adam', 'sgdm', 'information', 'feedback'] (admit others with extra_rules=)
    >>> check_learning_rules(["adam", "kp"], extra_rules=["kp"])
    """
    if isinstance(extra_rules, str):
        extra_rules = [extra_rules]
    known = list(LEARNING_RULES) + [str(r) for r in (extra_rules or ()) if str(r) not in LEARNING_RULES]
    unknown = [r for r in pd.unique(pd.Series(np.asarray(rules, dtype=object))) if r not in known]
    if not unknown:
        return
    value = _plain(unknown[0])
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        raise DatasetError(f"{where}: a learning rule is null; every trajectory needs one of {known}")
    if not isinstance(value, str):
        raise DatasetError(f"{where}: learning rule {value!r} is not a name (a string); known rules are {known}")
    key = value.strip().lower()
    close = key if key in known else _RULE_ALIASES.get(key)
    if close is None:
        close = next(iter(difflib.get_close_matches(key, known, n=1, cutoff=0.6)), None)
    hint = f" (did you mean {close!r}?)" if close else ""
    more = f" and {len(unknown) - 1} other(s): {[_plain(u) for u in unknown[1:4]]}" if len(unknown) > 1 else ""
    raise DatasetError(
        f"{where}: unknown learning rule {value!r}{hint}{more}; known rules are {known} "
        "(admit others with extra_rules=)"
    )


def validate_table(frame, where="table", extra_rules=None):
    """Check a DataFrame against the contract and return it with declared dtypes.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per (network, layer, checkpoint, condition). Extra columns
        are kept as they are.
    where : str
        Name of the origin (a file path, say) used in error messages.
    extra_rules : sequence of str, optional
        Learning-rule names admitted besides :data:`LEARNING_RULES`.

    Returns
    -------
    pandas.DataFrame
        A copy with integer, float, string and float32 observable columns,
        in :data:`COLUMNS` order followed by the extra columns (the order
        :func:`write_table` stores).

    Raises
    ------
    DatasetError
        Naming the missing column, or the column, row and value that break
        it, an unknown learning rule, or a trajectory whose per-trajectory
        columns change between checkpoints.
    """
    missing = [c.name for c in COLUMNS if c.name not in frame.columns and not c.optional]
    if missing:
        raise DatasetError(f"{where}: missing column(s) {missing}")
    frame = _with_optional_columns(frame)
    out = frame[list(SCHEMA.names) + [c for c in frame.columns if c not in SCHEMA.names]].copy()
    for column in _TYPED:
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
        *((name, (out[name] <= 0).fillna(False), "must be > 0") for name in SIZE_COLUMNS),
    )
    for name, bad, rule in checks:
        if bad.any():
            raise DatasetError(f"{where}: {_first_bad(out, bad, name)} {rule}")
    check_learning_rules(out["learning_rule"].to_numpy(dtype=object), extra_rules, where)
    for name in _STATISTIC_COLUMNS:
        values = pd.to_numeric(out[name], errors="coerce")
        bad = values.isna() & out[name].notna()
        if bad.any():
            raise DatasetError(f"{where}: expected numbers in {_first_bad(out, bad, name)}")
        out[name] = values.astype("float32")
    duplicated = out.duplicated(list(TRAJECTORY_KEY) + ["checkpoint"])
    if duplicated.any():
        position = np.flatnonzero(duplicated.to_numpy())[0]
        key = {k: _plain(out[k].iloc[position]) for k in TRAJECTORY_KEY + ("checkpoint",)}
        raise DatasetError(f"{where}: duplicated trajectory checkpoint at row {_plain(out.index[position])}: {key}")
    codes, _ = _trajectory_codes(out)
    _check_constant_within_trajectories(out, codes, _first_rows(codes), where)
    return out


_NULLABLE_INT_COLUMNS = [c.name for c in _TYPED if c.nullable and pa.types.is_integer(c.type)]
_OPTIONAL = tuple(c for c in COLUMNS if c.optional)
_DECLARED = {c.name: c for c in COLUMNS}


def _null_values(column, n):
    """``n`` nulls of a declared numeric column's pandas dtype (``<NA>`` for integers, else NaN)."""
    if pa.types.is_integer(column.type):
        return pd.array([pd.NA] * n, dtype="Int64")
    return np.full(n, np.nan, dtype=column.type.to_pandas_dtype())


def _with_optional_columns(frame, names=OPTIONAL_COLUMNS):
    """``frame`` with the optional columns it lacks added as nulls (a copy only when some are missing)."""
    absent = [name for name in names if name not in frame.columns]
    return frame.assign(**{name: _null_values(_DECLARED[name], len(frame)) for name in absent}) if absent else frame


def check_forward_gradient(frame, names, where="table"):
    """Refuse to use the forward-Jacobian gradient where the data did not record it.

    Parameters
    ----------
    frame : pandas.DataFrame
        Tidy rows (or any frame with the requested columns).
    names : sequence of str
        The requested statistics; only :data:`~lrid_analysis.observables.FORWARD_GRADIENT_NAMES`
        among them are checked.
    where : str
        The data source, named in the message.

    Raises
    ------
    DatasetError
        When a requested ``gradfwd`` column is absent or null in every row
        (the public data, the shipped v1 embedded data, data generated
        before lrid recorded it).

    Examples
    --------
    >>> frame = pd.DataFrame({"gradfwdabs_id": [np.nan, np.nan], "gradavgabs_id": [1.0, 2.0]})
    >>> check_forward_gradient(frame, ["gradavgabs_id"])
    >>> check_forward_gradient(frame, ["gradfwdabs_id"], where="public")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lrid_analysis.contract.DatasetError: public: this data has no forward-Jacobian recording ...
    """
    absent = [n for n in names if n in FORWARD_GRADIENT_NAMES and (n not in frame.columns or frame[n].isna().all())]
    if absent:
        raise DatasetError(
            f"{where}: this data has no forward-Jacobian recording ({', '.join(absent)} null in every row; the "
            "public data, the shipped v1 embedded data and older generated data have none). The paper used "
            "gradavg (each layer's own backward, which reads the feedback weights B under FA / IA): use the "
            "observable sets 'grad' / 'all', or generate data with lrid_generate to get 'gradfwd' / 'all_fwd'"
        )


def _trajectory_codes(frame):
    """Trajectory number of every row, in order of first appearance.

    Returns
    -------
    codes : ndarray of int64, shape (n_rows,)
    n_trajectories : int
    """
    combined = np.zeros(len(frame), dtype=np.int64)
    size = 1
    for column in TRAJECTORY_KEY:
        values = frame[column]
        if isinstance(values.dtype, pd.CategoricalDtype):  # integer codes exist already (-1 is null)
            codes, n_values = values.cat.codes.to_numpy().astype(np.int64) + 1, len(values.cat.categories) + 1
        else:
            codes, uniques = pd.factorize(values, use_na_sentinel=False)
            n_values = len(uniques)
        if size * n_values >= 2**62:  # keep the mixed-radix code inside int64
            combined, kept = pd.factorize(combined)
            size = len(kept)
        combined = combined * n_values + codes
        size *= n_values
    codes, uniques = pd.factorize(combined)
    return codes.astype(np.int64, copy=False), len(uniques)


def _first_rows(codes):
    """Row of each trajectory's first appearance, in trajectory order.

    ``codes`` number trajectories by first appearance, so a row is a
    trajectory's first exactly where the running maximum of the codes grows.
    """
    if len(codes) == 0:
        return np.zeros(0, dtype=np.intp)
    running = np.maximum.accumulate(codes)
    return np.flatnonzero(np.concatenate(([True], running[1:] > running[:-1])))


#: Contract columns that describe a whole trajectory (the same at every checkpoint).
_PER_TRAJECTORY = tuple(c for c in META_COLUMNS + SIZE_COLUMNS if c not in TRAJECTORY_KEY + _PER_CHECKPOINT)


def _varying_rows(values, codes, first):
    """Boolean mask of the rows whose value differs from their trajectory's first row (nulls compare equal)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        value_codes = values.cat.codes.to_numpy()
    else:
        value_codes, _ = pd.factorize(values, use_na_sentinel=False)
    return value_codes != value_codes[first][codes]


def _check_constant_within_trajectories(frame, codes, first, where, columns=_PER_TRAJECTORY):
    """Refuse a trajectory whose per-trajectory column changes between its checkpoints."""
    for column in columns:
        if column not in frame.columns:
            continue
        bad = _varying_rows(frame[column], codes, first)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            start = int(first[codes[row]])
            key = {k: _plain(frame[k].iloc[start]) for k in TRAJECTORY_KEY}
            seen = [(_plain(frame[column].iloc[r]), _plain(frame["checkpoint"].iloc[r])) for r in (start, row)]
            raise DatasetError(
                f"{where}: trajectory {key}: column {column!r} differs between its checkpoints "
                f"({seen[0][0]!r} at checkpoint {seen[0][1]}, {seen[1][0]!r} at checkpoint {seen[1][1]}); "
                "it must be the same at every checkpoint of a trajectory"
            )
