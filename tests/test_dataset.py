"""Tests for lrid_analysis.dataset: contract, atomic writes, reading, the analysis view."""

import json
import os
import stat
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lrid_analysis import dataset
from lrid_analysis.dataset import (
    COLUMNS,
    LAYER_POSITIONS,
    LEARNING_CURVE_COLUMNS,
    META_COLUMNS,
    OPTIONAL_COLUMNS,
    SCHEMA,
    SIZE_COLUMNS,
    TRAJECTORY_KEY,
    AnalysisView,
    DatasetError,
    apply_filters,
    check_learning_rules,
    load_view,
    read_table,
    resolve_observables,
    to_view,
    validate_table,
    write_partitioned,
    write_table,
)
from lrid_analysis.observables import (
    ADMISSIBLE_NAMES,
    FORWARD_GRADIENT_NAMES,
    MEASURE_GROUPS,
    OBSERVABLE_NAMES,
)
from lrid_analysis.synthetic import synthetic_table

N_CKPT = 21


def trajectory_keys(frame):
    """Trajectory key tuples in order of first appearance (plain Python)."""
    rows = zip(*(frame[k].tolist() for k in TRAJECTORY_KEY))
    return list(dict.fromkeys(rows))


def assert_views_equal(a, b):
    assert a.observables == b.observables
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.layer_onehot, b.layer_onehot)
    np.testing.assert_array_equal(a.epochs, b.epochs)
    pd.testing.assert_frame_equal(a.meta, b.meta)


# ---------------------------------------------------------------- contract


def test_columns_and_schema():
    names = [c.name for c in COLUMNS]
    curve = ["train_accuracy", "val_accuracy", "train_loss", "val_loss"]
    sizes = ["n_inputs", "n_outputs", "n_weights"]
    forward = ["gradfwdabs_id", "gradfwdraw_id", "gradfwdsq_id"]
    assert names == list(META_COLUMNS) + list(OBSERVABLE_NAMES) + forward + curve + sizes
    assert list(LEARNING_CURVE_COLUMNS) == curve and list(SIZE_COLUMNS) == sizes
    assert list(FORWARD_GRADIENT_NAMES) == forward
    assert list(OPTIONAL_COLUMNS) == forward + curve + sizes
    assert SCHEMA.names == names
    assert all(SCHEMA.field(n).type == pa.float32() for n in OBSERVABLE_NAMES + FORWARD_GRADIENT_NAMES)
    assert all(SCHEMA.field(n).type == pa.float64() for n in curve)
    assert all(SCHEMA.field(n).type == pa.int64() for n in sizes)
    nullable = {c.name for c in COLUMNS if c.nullable}
    assert nullable == ({"model_seed", "dataset_seed", "layer_index", "epoch"} | set(OBSERVABLE_NAMES)
                        | set(OPTIONAL_COLUMNS))
    assert set(TRAJECTORY_KEY) <= set(META_COLUMNS) and "checkpoint" not in TRAJECTORY_KEY
    assert all(c.doc for c in COLUMNS)


def test_validate_table_sets_declared_dtypes(small_table):
    out = validate_table(small_table)
    assert out["task"].dtype == "string" and out["run_id"].dtype == "string"
    assert out["batch_size"].dtype == "int64" and out["checkpoint"].dtype == "int64"
    assert out["model_seed"].dtype == "Int64" and out["layer_index"].dtype == "Int64"
    assert out["unit_fraction"].dtype == "float64"
    assert all(out[n].dtype == np.float32 for n in OBSERVABLE_NAMES)
    assert out["model_seed"].isna().any()  # public None seeds stay null
    assert len(out) == len(small_table)


def test_validate_table_keeps_extra_columns(small_table):
    small_table["curriculum"] = "standard"
    assert (validate_table(small_table)["curriculum"] == "standard").all()


def test_validate_table_missing_column(small_table):
    with pytest.raises(DatasetError, match=r"runs\.parquet: missing column\(s\) \['layer_position'\]"):
        validate_table(small_table.drop(columns="layer_position"), where="runs.parquet")


def test_validate_table_bad_layer_position(small_table):
    small_table.loc[5, "layer_position"] = "top"
    with pytest.raises(DatasetError, match=r"column 'layer_position', row 5: value 'top' must be one of"):
        validate_table(small_table)


def test_validate_table_non_integer_batch_size(small_table):
    small_table["batch_size"] = small_table["batch_size"].astype(float)
    small_table.loc[3, "batch_size"] = 12.5
    with pytest.raises(DatasetError, match=r"expected integers in column 'batch_size', row 3: value 12\.5"):
        validate_table(small_table)


def test_validate_table_text_in_integer_column(small_table):
    small_table["obs_seed"] = small_table["obs_seed"].astype(object)
    small_table.loc[8, "obs_seed"] = "seven"
    with pytest.raises(DatasetError, match=r"column 'obs_seed', row 8: value 'seven'"):
        validate_table(small_table)


@pytest.mark.parametrize("value", [1.5, 0.0, -0.2])
def test_validate_table_unit_fraction_out_of_range(small_table, value):
    small_table.loc[7, "unit_fraction"] = value
    with pytest.raises(DatasetError, match=rf"column 'unit_fraction', row 7: value {value} must be in \(0, 1\]"):
        validate_table(small_table)


def test_validate_table_negative_values(small_table):
    bad = small_table.copy()
    bad.loc[2, "noise_std"] = -1.0
    with pytest.raises(DatasetError, match=r"column 'noise_std', row 2: value -1\.0 must be >= 0"):
        validate_table(bad)
    small_table.loc[4, "checkpoint"] = -3
    with pytest.raises(DatasetError, match=r"column 'checkpoint', row 4: value -3 must be >= 0"):
        validate_table(small_table)


def test_validate_table_duplicated_checkpoint(small_table):
    doubled = pd.concat([small_table, small_table.iloc[[30]]], ignore_index=True)
    run_id = small_table.loc[30, "run_id"]
    with pytest.raises(DatasetError, match=rf"duplicated trajectory checkpoint at row {len(small_table)}") as err:
        validate_table(doubled)
    assert run_id in str(err.value) and small_table.loc[30, "layer_name"] in str(err.value)


def test_validate_table_non_numeric_observable(small_table):
    small_table["actraw_mean"] = small_table["actraw_mean"].astype(object)
    small_table.loc[2, "actraw_mean"] = "high"
    with pytest.raises(DatasetError, match=r"expected numbers in column 'actraw_mean', row 2: value 'high'"):
        validate_table(small_table)


@pytest.mark.parametrize("column", ["task", "run_id", "checkpoint", "unit_fraction", "batch_size"])
def test_validate_table_null_in_required_column(small_table, column):
    small_table[column] = small_table[column].astype(object)
    small_table.loc[4, column] = None
    with pytest.raises(DatasetError, match=rf"null not allowed in column '{column}', row 4"):
        validate_table(small_table)


def test_validate_table_nulls_allowed_where_declared(small_table):
    small_table["layer_index"] = pd.array([pd.NA] * len(small_table), dtype="Int64")
    small_table["epoch"] = np.nan
    small_table.loc[small_table["run_id"] == small_table.loc[0, "run_id"], "model_seed"] = pd.NA  # a whole network
    small_table.loc[1, "actsq_kurtosis"] = np.nan
    out = validate_table(small_table)
    assert out["layer_index"].isna().all() and out["epoch"].isna().all()
    assert np.isnan(out.loc[1, "actsq_kurtosis"])


def test_validate_table_names_index_labels(small_table):
    small_table.index = np.arange(len(small_table)) + 1000
    small_table.loc[1005, "layer_position"] = "top"
    with pytest.raises(DatasetError, match=r"row 1005: value 'top'"):
        validate_table(small_table)
    small_table.index = np.zeros(len(small_table), dtype=int)  # duplicated labels still give one value
    with pytest.raises(DatasetError, match=r"row 0: value 'top'"):
        validate_table(small_table)


# ---------------------------------------------------------------- writing


def test_write_table_round_trip(small_table, tmp_path):
    path = write_table(small_table, tmp_path / "sub" / "runs.parquet", metadata={"lrid_version": "0.1.0"})
    assert path == tmp_path / "sub" / "runs.parquet"
    back = read_table(path)
    pd.testing.assert_frame_equal(back, validate_table(small_table))
    assert pq.read_schema(path).metadata[b"lrid_version"] == b"0.1.0"
    assert [p.name for p in path.parent.iterdir()] == ["runs.parquet"]


def test_write_table_compression_level_is_lossless(small_table, tmp_path):
    fast = write_table(small_table, tmp_path / "fast.parquet", compression_level=1)
    small = write_table(small_table, tmp_path / "small.parquet", compression_level=19)
    pd.testing.assert_frame_equal(read_table(fast), read_table(small))
    assert small.stat().st_size < fast.stat().st_size
    with pytest.raises(ValueError, match="bad.parquet: compression_level must be an integer from 1 to 22"):
        write_table(small_table, tmp_path / "bad.parquet", compression_level=0)
    assert not (tmp_path / "bad.parquet").exists()


def test_write_table_file_mode_follows_umask(small_table, tmp_path):
    path = write_table(small_table.head(21), tmp_path / "runs.parquet")
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    assert stat.S_IMODE(os.stat(path).st_mode) == stat.S_IMODE(os.stat(plain).st_mode)


def test_write_table_validates_first(small_table, tmp_path):
    small_table.loc[0, "layer_position"] = "top"
    with pytest.raises(DatasetError, match="layer_position"):
        write_table(small_table, tmp_path / "runs.parquet")
    assert list(tmp_path.iterdir()) == []


def _crashing_writer(monkeypatch, exception, seen):
    real = pq.write_table

    def crash(table, where, **kwargs):
        real(table.slice(0, 5), where, **kwargs)  # a partial file under the temporary name
        seen["tmp"] = Path(where)
        seen["visible"] = read_table(Path(where).parent) if seen.get("read") else None
        raise exception

    monkeypatch.setattr(dataset.pq, "write_table", crash)


@pytest.mark.parametrize("exception", [OSError("disk full"), KeyboardInterrupt()])
def test_write_table_crash_leaves_no_file(small_table, tmp_path, monkeypatch, exception):
    seen = {}
    _crashing_writer(monkeypatch, exception, seen)
    with pytest.raises(type(exception)):
        write_table(small_table, tmp_path / "runs.parquet")
    assert seen["tmp"].parent == tmp_path and seen["tmp"].name.startswith(".")
    assert list(tmp_path.iterdir()) == []


def test_write_table_crash_keeps_old_file_and_readers_see_it(small_table, tmp_path, monkeypatch):
    old = small_table.head(42)
    path = write_table(old, tmp_path / "runs.parquet")
    seen = {"read": True}
    _crashing_writer(monkeypatch, OSError("disk full"), seen)
    with pytest.raises(OSError, match="disk full"):
        write_table(small_table, path)
    # while the partial temporary file existed, a reader of the folder saw the old table only
    assert len(seen["visible"]) == 42
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.parquet"]
    pd.testing.assert_frame_equal(read_table(path), validate_table(old))


def test_write_partitioned_layout(small_table, tmp_path):
    paths = write_partitioned(small_table, tmp_path, partition_by=("source", "task"), name="part")
    relative = sorted(str(p.relative_to(tmp_path)) for p in paths)
    assert relative == ["source=synthetic/task=cifar10/part.parquet", "source=synthetic/task=imagenet/part.parquet"]
    for path in paths:
        part = read_table(path)  # each file is a complete table
        assert list(part.columns) == SCHEMA.names
        assert part["task"].unique().tolist() == [path.parent.name.split("=")[1]]
    back = read_table(tmp_path)
    assert len(back) == len(small_table)
    assert back["task"].tolist() == sorted(small_table["task"])  # folder order: cifar10 then imagenet


def test_write_partitioned_null_values_and_bad_column(small_table, tmp_path):
    paths = write_partitioned(small_table, tmp_path, partition_by=("model_seed",), name="part")
    assert sorted(p.parent.name for p in paths) == ["model_seed=0", "model_seed=null"]
    assert len(read_table(tmp_path)) == len(small_table)
    with pytest.raises(DatasetError, match=r"cannot partition by \['colour'\]"):
        write_partitioned(small_table, tmp_path, partition_by=("colour",))


# ---------------------------------------------------------------- reading


def test_read_table_folder_order_and_hidden_files(small_table, tmp_path):
    first, second = small_table.iloc[:63], small_table.iloc[63:126]
    write_table(second, tmp_path / "b.parquet")
    write_table(first, tmp_path / "a.parquet")
    (tmp_path / ".b.parquet.0123.tmp").write_bytes(b"PAR1 half a file")
    (tmp_path / ".hidden.parquet").write_bytes(b"garbage")
    (tmp_path / "_SUCCESS").write_bytes(b"")
    (tmp_path / "_tmp").mkdir()
    (tmp_path / "_tmp" / "x.parquet").write_bytes(b"garbage")
    (tmp_path / "notes.txt").write_text("not data")
    back = read_table(tmp_path)
    pd.testing.assert_frame_equal(back, validate_table(pd.concat([first, second], ignore_index=True)))


def test_read_table_nested_folders_sorted(small_table, tmp_path):
    write_table(small_table.iloc[21:42], tmp_path / "z" / "p.parquet")
    write_table(small_table.iloc[:21], tmp_path / "a" / "q" / "p.parquet")
    assert read_table(tmp_path)["checkpoint"].tolist() == list(range(21)) * 2
    assert read_table(tmp_path)["layer_name"].tolist() == small_table["layer_name"].iloc[:42].tolist()


def test_read_table_corrupt_file_is_named(small_table, tmp_path):
    write_table(small_table.head(21), tmp_path / "a.parquet")
    (tmp_path / "broken.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(DatasetError, match=r"broken\.parquet: not a readable Parquet file"):
        read_table(tmp_path)


def test_read_table_missing_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Parquet data at"):
        read_table(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no \.parquet files under"):
        read_table(tmp_path / "empty")


def test_read_table_columns_and_missing_column(small_table, tmp_path):
    path = write_table(small_table, tmp_path / "a.parquet")
    part = read_table(path, columns=["run_id", "actraw_mean"])
    assert list(part.columns) == ["run_id", "actraw_mean"]
    with pytest.raises(DatasetError, match=r"a\.parquet: missing column\(s\) \['colour'\]"):
        read_table(path, columns=["run_id", "colour"])


def test_read_table_filters_and_validate(small_table, tmp_path):
    path = write_table(small_table, tmp_path / "a.parquet")
    adam = read_table(path, filters={"learning_rule": "adam"}, validate=True)
    assert set(adam["learning_rule"]) == {"adam"}
    assert len(adam) == (small_table["learning_rule"] == "adam").sum()


def test_read_table_nullable_integers_without_pandas_metadata(small_table, tmp_path):
    table = pa.Table.from_pandas(validate_table(small_table), preserve_index=False).replace_schema_metadata(None)
    pq.write_table(table, tmp_path / "plain.parquet")
    back = read_table(tmp_path / "plain.parquet")
    assert back["model_seed"].dtype == "Int64" and back["batch_size"].dtype == "int64"
    assert back["model_seed"].isna().sum() == small_table["model_seed"].isna().sum()
    assert back["task"].dtype == "string"


# ---------------------------------------------------------------- filters and observables


def test_apply_filters(small_table):
    kept = apply_filters(small_table, {"learning_rule": ["adam", "sgdm"], "task": "imagenet"})
    assert set(kept["learning_rule"]) == {"adam", "sgdm"} and set(kept["task"]) == {"imagenet"}
    assert kept.index.tolist() == list(range(len(kept)))
    assert len(apply_filters(small_table, {"unit_fraction": "1.0"})) == len(small_table)
    nulls = apply_filters(small_table, {"model_seed": None})
    assert len(nulls) == small_table["model_seed"].isna().sum() > 0


def test_apply_filters_errors_list_what_exists(small_table):
    with pytest.raises(DatasetError, match="cannot filter on unknown column 'rule'") as err:
        apply_filters(small_table, {"rule": "adam"}, where="runs")
    assert "learning_rule" in str(err.value)
    with pytest.raises(DatasetError, match=r"no rows with learning_rule = 'hebb'") as err:
        apply_filters(small_table, {"learning_rule": "hebb"})
    assert "['adam', 'feedback', 'information', 'sgdm']" in str(err.value)


def test_resolve_observables():
    assert resolve_observables(None) == list(ADMISSIBLE_NAMES)
    assert resolve_observables("all") == list(ADMISSIBLE_NAMES)
    assert resolve_observables("all45") == list(OBSERVABLE_NAMES)
    assert resolve_observables("grad") == list(MEASURE_GROUPS["grad"])
    assert resolve_observables("actraw_mean, weightabs_var") == ["actraw_mean", "weightabs_var"]
    assert resolve_observables(["weightsq_skew"]) == ["weightsq_skew"]
    with pytest.raises(DatasetError, match=r"unknown observable set or statistic 'spikes'") as err:
        resolve_observables(["spikes"])
    assert "all45" in str(err.value) and "gradavgsq_id" in str(err.value)


# ---------------------------------------------------------------- the analysis view


def test_to_view_shapes_and_values(small_table, small_meta):
    shuffled = small_table.sample(frac=1.0, random_state=0)  # rows in no particular order
    view = to_view(shuffled)
    n_traj = len(small_meta)
    assert view.X.shape == (n_traj, N_CKPT, 24) and view.X.dtype == np.float32
    assert view.layer_onehot.shape == (n_traj, 3) and view.epochs.shape == (n_traj, N_CKPT)
    assert len(view) == n_traj and view.observables == list(ADMISSIBLE_NAMES)
    # trajectories in order of first appearance, each value where its row says
    keys = trajectory_keys(shuffled)
    assert list(zip(*(view.meta[k].tolist() for k in TRAJECTORY_KEY))) == keys
    position = {key: i for i, key in enumerate(keys)}
    values = shuffled[list(ADMISSIBLE_NAMES)].to_numpy()
    for row, (key, checkpoint) in enumerate(zip(zip(*(shuffled[k] for k in TRAJECTORY_KEY)), shuffled["checkpoint"])):
        i = position[key]
        np.testing.assert_array_equal(view.X[i, checkpoint], values[row])
        assert view.epochs[i, checkpoint] == shuffled["epoch"].iloc[row]


def test_to_view_meta_onehot_and_labels(small_table):
    view = to_view(small_table)
    assert "checkpoint" not in view.meta and "epoch" not in view.meta
    assert not set(OBSERVABLE_NAMES) & set(view.meta.columns)
    assert set(TRAJECTORY_KEY) <= set(view.meta.columns)
    np.testing.assert_array_equal(view.layer_onehot.sum(axis=1), 1.0)
    positions = np.array(LAYER_POSITIONS)[view.layer_onehot.argmax(axis=1)]
    assert positions.tolist() == view.meta["layer_position"].tolist()
    assert view.y.tolist() == view.meta["learning_rule"].tolist()
    np.testing.assert_array_equal(view.epochs, np.tile(np.arange(N_CKPT) * 5.0, (len(view), 1)))
    # X owns its memory: editing it leaves the table alone
    before = small_table["weightabs_mean"].iloc[0]
    view.X[0, 0, 0] = before + 1.0
    assert small_table["weightabs_mean"].iloc[0] == before


def test_to_view_conditions_are_separate_trajectories(small_meta):
    meta = small_meta.iloc[:20]
    table = synthetic_table(meta, conditions=((1.0, 0.0, 0), (0.5, 0.1, 1)), seed=3)
    view = to_view(table, observables="all45")
    assert view.X.shape == (40, N_CKPT, 45)
    assert view.meta["unit_fraction"].tolist() == [1.0] * 20 + [0.5] * 20
    assert view.meta["run_id"].iloc[:20].tolist() == view.meta["run_id"].iloc[20:].tolist()


def test_to_view_filters_and_observables(small_table):
    view = to_view(small_table, observables=["actraw_mean", "weightabs_var"], filters={"learning_rule": "adam"})
    assert set(view.y) == {"adam"}
    assert view.observables == ["actraw_mean", "weightabs_var"]
    adam = small_table[small_table["learning_rule"] == "adam"]
    np.testing.assert_array_equal(view.X[..., 0].ravel(), adam["actraw_mean"].to_numpy())
    assert to_view(small_table, observables="grad").X.shape[-1] == 3
    with pytest.raises(DatasetError, match="no rows with task = 'mnist'"):
        to_view(small_table, filters={"task": "mnist"})
    with pytest.raises(DatasetError, match="cannot filter on unknown column 'colour'"):
        to_view(small_table, filters={"colour": "red"})


def test_to_view_missing_checkpoint_names_the_trajectory(small_table):
    row = 3 * N_CKPT + 7
    run_id, layer = small_table.loc[row, "run_id"], small_table.loc[row, "layer_name"]
    with pytest.raises(DatasetError, match=r"has checkpoint 7 0 times") as err:
        to_view(small_table.drop(index=row), where="runs.parquet")
    message = str(err.value)
    assert message.startswith("runs.parquet: trajectory") and run_id in message and layer in message
    doubled = pd.concat([small_table, small_table.iloc[[row]]], ignore_index=True)
    with pytest.raises(DatasetError, match=r"has checkpoint 7 2 times"):
        to_view(doubled)


def test_to_view_rejects_bad_rows(small_table):
    with pytest.raises(DatasetError, match="no rows left"):
        to_view(small_table.iloc[:0])
    with pytest.raises(DatasetError, match=r"missing column\(s\) \['obs_seed'\]"):
        to_view(small_table.drop(columns="obs_seed"))
    bad = small_table.copy()
    bad.loc[0, "layer_position"] = "top"
    with pytest.raises(DatasetError, match=r"column 'layer_position', row 0: value 'top' must be one of"):
        to_view(bad)
    bad.loc[0, "layer_position"] = None
    with pytest.raises(DatasetError, match=r"column 'layer_position', row 0: value .* must be one of"):
        to_view(bad)
    small_table.loc[5, "checkpoint"] = -1
    with pytest.raises(DatasetError, match=r"column 'checkpoint', row 5: value -1 must be >= 0"):
        to_view(small_table)


def test_load_view_round_trip(small_table, tmp_path):
    path = write_table(small_table, tmp_path / "runs.parquet")
    assert_views_equal(load_view(path), to_view(validate_table(small_table)))
    filters = {"learning_rule": ["feedback", "information"], "task": "cifar10"}
    assert_views_equal(load_view(path, "all45", filters), to_view(read_table(path), "all45", filters))
    view = load_view(path)
    assert view.meta["run_id"].dtype == "string" and view.meta["model_seed"].dtype == "Int64"
    assert view.X.flags.writeable and view.X.flags.c_contiguous


def test_load_view_partitioned_folder_with_extra_column(small_table, tmp_path):
    small_table["curriculum"] = "standard"
    write_partitioned(small_table, tmp_path, partition_by=("source", "task"), name="part")
    view = load_view(tmp_path, observables="act")
    assert_views_equal(view, to_view(read_table(tmp_path), "act"))
    assert view.meta["task"].tolist() == sorted(view.meta["task"])
    assert (view.meta["curriculum"] == "standard").all()
    with pytest.raises(DatasetError, match="no rows with learning_rule"):
        load_view(tmp_path, filters={"learning_rule": "hebb"})


def test_load_view_shuffled_rows(small_table, tmp_path):
    shuffled = small_table.sample(frac=1.0, random_state=1).reset_index(drop=True)
    path = write_table(shuffled, tmp_path / "runs.parquet")
    assert_views_equal(load_view(path), to_view(validate_table(shuffled)))


def test_view_subset_and_select_observables(small_table):
    view = to_view(small_table)
    index = np.array([5, 0, 17])
    part = view.subset(index)
    np.testing.assert_array_equal(part.X, view.X[index])
    np.testing.assert_array_equal(part.layer_onehot, view.layer_onehot[index])
    np.testing.assert_array_equal(part.epochs, view.epochs[index])
    assert part.meta.index.tolist() == [0, 1, 2]
    assert part.meta["run_id"].tolist() == view.meta["run_id"].iloc[index].tolist()
    mask = view.y == "sgdm"
    assert_views_equal(view.subset(mask), view.subset(np.flatnonzero(mask)))
    assert isinstance(part, AnalysisView)

    act = view.select_observables("act")
    assert act.observables == list(MEASURE_GROUPS["act"])
    columns = [view.observables.index(n) for n in act.observables]
    np.testing.assert_array_equal(act.X, view.X[:, :, columns])
    two = view.select_observables(["gradavgsq_id", "weightabs_mean"])
    np.testing.assert_array_equal(two.X[..., 1], view.X[..., 0])
    with pytest.raises(DatasetError, match=r"observable\(s\) \['actsq_var'\] not in this view"):
        view.select_observables(["actsq_var"])


# ---------------------------------------------------------------- integrity (issue 9, items 7-9)


def _chunk_ends(path, columns=None):
    """End offset (exclusive) of every column chunk (of ``columns``): the last bytes of each chunk's last data page."""
    metadata = pq.ParquetFile(path).metadata
    ends = []
    for g in range(metadata.num_row_groups):
        for j in range(metadata.num_columns):
            chunk = metadata.row_group(g).column(j)
            if columns is not None and chunk.path_in_schema not in columns:
                continue
            start = chunk.dictionary_page_offset or chunk.data_page_offset
            ends.append(start + chunk.total_compressed_size)
    return ends


def _flipped_copies(path, folder, n_flips, seed=0, columns=None):
    """Copies of ``path``, each with one bit flipped inside a data page's payload.

    A column chunk ends with its last data page, whose compressed values end
    exactly where the chunk ends: a byte among the last eight of a chunk is
    page data, never a page header.
    """
    data = Path(path).read_bytes()
    ends = _chunk_ends(path, columns)
    rng = np.random.default_rng(seed)
    for k in range(n_flips):
        offset = ends[rng.integers(len(ends))] - 1 - int(rng.integers(8))
        flipped = bytearray(data)
        flipped[offset] ^= 1 << int(rng.integers(8))
        copy = Path(folder) / f"flip{k}{'' if columns is None else '-read'}" / Path(path).name
        copy.parent.mkdir(parents=True)
        copy.write_bytes(bytes(flipped))
        yield copy


def test_written_files_carry_page_checksums(small_table, tmp_path):
    path = write_table(small_table, tmp_path / "runs.parquet")
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"
    for copy in _flipped_copies(path, tmp_path, n_flips=30):
        with pytest.raises(DatasetError, match=rf"{copy.parent.name}.runs\.parquet: corrupt Parquet file: a page checksum"):
            read_table(copy)
    # load_view reads (and checks) only the columns it needs: flips in those
    read = set(META_COLUMNS + SIZE_COLUMNS + OBSERVABLE_NAMES)
    for copy in _flipped_copies(path, tmp_path, n_flips=30, columns=read):
        with pytest.raises(DatasetError, match="corrupt Parquet file"):
            load_view(copy, observables="all45")


def test_shipped_files_carry_page_checksums(tmp_path):
    from lrid_analysis.sources import embedded_path

    shipped = sorted(embedded_path().rglob("*.parquet"))
    shipped.append(embedded_path().parent / "public_meta.parquet")
    # four task files, the public meta rows, and under _diverged/ one file per task with diverged networks
    runs = json.loads((embedded_path() / "runs.json").read_text())
    diverged_tasks = {run["task"] for run in runs if run["status"] != "complete"}
    assert len([p for p in shipped if "_diverged" not in p.parts]) == 5
    assert {p.parent.name for p in shipped if "_diverged" in p.parts} == {f"task={t}" for t in diverged_tasks}
    for k, path in enumerate(shipped):
        for copy in _flipped_copies(path, tmp_path / str(k), n_flips=10, seed=k):
            with pytest.raises(DatasetError, match="corrupt Parquet file: a page checksum does not match"):
                read_table(copy)


def _write_plain(frame, path):
    """Write a table straight through pyarrow, bypassing the contract checks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return path


def test_column_type_and_null_errors_name_file_and_column(small_table, tmp_path):
    good = validate_table(small_table.head(42))
    write_table(good, tmp_path / "a.parquet")
    bad = good.iloc[21:].copy()
    bad["learning_rule"] = 3
    _write_plain(bad, tmp_path / "b.parquet")
    for reader in (read_table, load_view):
        with pytest.raises(DatasetError, match=r"b\.parquet: column 'learning_rule' has type int64; the contract needs string"):
            reader(tmp_path)
    bad["learning_rule"] = pd.array([None] * len(bad), dtype="string")
    bad.loc[bad.index[:4], "learning_rule"] = "adam"
    _write_plain(bad, tmp_path / "b.parquet")
    with pytest.raises(DatasetError, match=r"b\.parquet: column 'learning_rule' has 17 null value\(s\) \(first at row 4\)"):
        load_view(tmp_path)


def test_shards_with_compatible_types_combine_and_conflicting_extra_columns_are_named(small_table, tmp_path):
    good = validate_table(small_table.head(42))
    write_table(good.iloc[:21], tmp_path / "a.parquet")
    narrow = good.iloc[21:].astype({"batch_size": "int32", "obs_seed": "int16", "epoch": "float32"})
    _write_plain(narrow, tmp_path / "b.parquet")
    assert_views_equal(load_view(tmp_path), to_view(good))
    assert read_table(tmp_path)["batch_size"].dtype == "int64"

    write_table(good.iloc[:21].assign(note="x"), tmp_path / "a.parquet")
    write_table(good.iloc[21:].assign(note=1.5), tmp_path / "b.parquet")
    with pytest.raises(DatasetError, match=r"column 'note' has type string in .*a\.parquet but double in .*b\.parquet"):
        read_table(tmp_path)


@pytest.mark.parametrize("column, values", [("learning_rule", ("sgdm", "adam")), ("layer_position", ("early", "deep")),
                                            ("task", ("mnist",)), ("batch_size", (7,)), ("model_seed", (pd.NA, 5))])
def test_per_trajectory_columns_must_not_change_along_a_trajectory(small_table, tmp_path, column, values):
    frame = validate_table(small_table)
    row = 21 * 3 + 5  # checkpoint 5 of the fourth trajectory
    assert frame.loc[row, "checkpoint"] == 5
    old = frame.loc[row, column]
    frame.loc[row, column] = next(v for v in values if pd.isna(v) != pd.isna(old) or (not pd.isna(v) and v != old))
    run_id = frame.loc[row, "run_id"]
    pattern = rf"trajectory \{{'source': 'synthetic', 'run_id': '{run_id}'.*column '{column}' differs between its checkpoints .* at checkpoint 5"
    with pytest.raises(DatasetError, match=pattern):
        to_view(frame)
    with pytest.raises(DatasetError, match=pattern):
        validate_table(frame)
    _write_plain(frame, tmp_path / "runs.parquet")
    with pytest.raises(DatasetError, match=pattern):
        load_view(tmp_path / "runs.parquet")


def test_extra_columns_that_change_along_a_trajectory_leave_the_meta(small_table):
    small_table["curriculum"] = "standard"
    small_table["loss"] = np.arange(len(small_table), dtype=float)
    with pytest.warns(UserWarning, match=r"extra column\(s\) \['loss'\] change along trajectories"):
        view = to_view(small_table)
    assert "loss" not in view.meta.columns and (view.meta["curriculum"] == "standard").all()


@pytest.mark.parametrize("bad, suggestion", [("sgd", "sgdm"), ("Adam ", "adam"), ("FA", "feedback"),
                                             ("informaton", "information"), ("hebbian", None)])
def test_unknown_learning_rules_are_refused_with_the_close_name(small_table, tmp_path, bad, suggestion):
    small_table.loc[small_table["learning_rule"] == "sgdm", "learning_rule"] = bad
    hint = rf" \(did you mean '{suggestion}'\?\)" if suggestion else ""
    pattern = rf"unknown learning rule '{bad}'{hint}; known rules are \['adam', 'sgdm', 'information', 'feedback'\]"
    for check in (to_view, validate_table, lambda frame: write_table(frame, tmp_path / "x.parquet")):
        with pytest.raises(DatasetError, match=pattern):
            check(small_table)
    assert not (tmp_path / "x.parquet").exists()
    _write_plain(small_table, tmp_path / "raw.parquet")
    with pytest.raises(DatasetError, match=pattern):
        load_view(tmp_path / "raw.parquet")


def test_learning_rules_that_are_no_names():
    with pytest.raises(DatasetError, match="a learning rule is null"):
        check_learning_rules(pd.array(["adam", None], dtype="string"))
    with pytest.raises(DatasetError, match=r"learning rule 3 is not a name \(a string\)"):
        check_learning_rules(np.array(["adam", 3], dtype=object))


def test_extra_rules_admit_new_rule_names(small_table, tmp_path):
    small_table.loc[small_table["learning_rule"] == "sgdm", "learning_rule"] = "kp"
    path = write_table(small_table, tmp_path / "own.parquet", extra_rules=["kp"])
    view = load_view(path, extra_rules=["kp"])
    assert set(view.y) == {"adam", "kp", "information", "feedback"}
    assert_views_equal(view, to_view(validate_table(small_table, extra_rules="kp"), extra_rules="kp"))
    assert set(read_table(path, validate=True, extra_rules=["kp"])["learning_rule"]) == set(view.y)
    with pytest.raises(DatasetError, match="unknown learning rule 'kp'"):
        load_view(path)


# ---------------------------------------------------------------- load_view sources (issue 10, bug 3)


def test_load_view_takes_source_names_and_keeps_full_access_rows():
    from lrid_analysis.sources import embedded_path, resolve_data

    view = load_view("embedded", observables="act")
    assert_views_equal(view, load_view(embedded_path(), observables="act"))
    everything = load_view("embedded", observables="act", full_access=False)
    full = ((everything.meta["unit_fraction"] == 1) & (everything.meta["noise_std"] == 0)).to_numpy()
    assert 0 < full.sum() < len(everything)
    assert_views_equal(view, everything.subset(full))
    assert_views_equal(view, to_view(read_table(resolve_data("embedded")[0]), "act",
                                     filters={"unit_fraction": 1.0, "noise_std": 0.0}))


def test_load_view_full_access_errors_and_paths(small_meta, tmp_path):
    from lrid_analysis.synthetic import synthetic_table

    noisy = synthetic_table(small_meta.head(8), conditions=((0.5, 0.1, 1),))
    path = write_table(noisy, tmp_path / "embedded")  # a file named like a source: a path object is a path
    with pytest.raises(DatasetError, match=r"no full-access trajectories .* pass full_access=False"):
        load_view(path)
    assert len(load_view(path, full_access=False)) == 8
    with pytest.raises(FileNotFoundError, match="not one of"):
        load_view(str(tmp_path / "nowhere"))


def test_learning_curve_columns_are_optional_and_round_trip(small_table, tmp_path):
    curve = list(LEARNING_CURVE_COLUMNS)
    old = small_table.drop(columns=curve)  # a file written before the columns existed
    pq.write_table(pa.Table.from_pandas(validate_table(small_table).drop(columns=curve), preserve_index=False),
                   tmp_path / "a_old.parquet")
    new = small_table.copy()
    new["run_id"] = new["run_id"] + "-new"
    new["val_accuracy"] = new["checkpoint"] / 20.0
    new["train_loss"] = 2.0 - new["checkpoint"] / 20.0
    write_table(new, tmp_path / "b_new.parquet")
    both = read_table(tmp_path)
    assert both[curve].dtypes.tolist() == [np.float64] * 4
    first = both.iloc[: len(old)]
    assert first[curve].isna().all().all()  # absent = null
    second = both.iloc[len(old):].reset_index(drop=True)
    np.testing.assert_array_equal(second["val_accuracy"], new["checkpoint"].to_numpy() / 20.0)
    assert second["train_accuracy"].isna().all()
    picked = read_table(tmp_path / "a_old.parquet", columns=["run_id", "val_accuracy"])
    assert list(picked.columns) == ["run_id", "val_accuracy"] and picked["val_accuracy"].isna().all()
    assert validate_table(old)[curve].isna().all().all()
    view = load_view(tmp_path, "grad")
    assert not set(curve) & set(view.meta.columns)  # per-checkpoint values, not trajectory metadata


# ---------------------------------------------------------------- optional columns: gradfwd and layer sizes (issue 14)


def _with_recorded_columns(frame):
    """``frame`` as lrid_generate writes it: gradfwd values and per-layer sizes."""
    out = frame.copy()
    rng = np.random.default_rng(7)
    for name in FORWARD_GRADIENT_NAMES:
        out[name] = rng.normal(size=len(out)).astype(np.float32)
    codes = pd.factorize(out["layer_name"])[0]
    out["n_inputs"], out["n_outputs"], out["n_weights"] = 10 + codes, 20 + codes, (10 + codes) * (20 + codes)
    return out


def test_forward_gradient_and_size_columns_are_optional_typed_and_round_trip(small_table, tmp_path):
    optional = list(FORWARD_GRADIENT_NAMES + SIZE_COLUMNS)
    old = validate_table(small_table).drop(columns=optional)  # a file written before the columns existed
    pq.write_table(pa.Table.from_pandas(old, preserve_index=False), tmp_path / "a_old.parquet")
    new = _with_recorded_columns(small_table)
    new["run_id"] = new["run_id"] + "-new"
    new["n_weights"] = new["n_weights"].astype(np.int32)  # a narrower integer type is cast, as for other columns
    write_table(new, tmp_path / "b_new.parquet")
    both = read_table(tmp_path)
    assert sorted(both.columns) == sorted(SCHEMA.names)
    assert both[list(FORWARD_GRADIENT_NAMES)].dtypes.tolist() == [np.float32] * 3
    assert both[list(SIZE_COLUMNS)].dtypes.tolist() == ["Int64"] * 3
    first, second = both.iloc[: len(old)], both.iloc[len(old):].reset_index(drop=True)
    assert first[optional].isna().all().all()  # absent = null
    np.testing.assert_array_equal(second["gradfwdraw_id"], new["gradfwdraw_id"].to_numpy())
    np.testing.assert_array_equal(second["n_weights"].to_numpy(dtype=np.int64), new["n_weights"].to_numpy())
    assert validate_table(small_table.drop(columns=optional))[optional].isna().all().all()
    # sizes are trajectory metadata: in the view's meta, null where not recorded
    view = load_view(tmp_path, "gradfwd", filters={"run_id": list(new["run_id"].unique())})
    assert view.observables == list(FORWARD_GRADIENT_NAMES)
    sizes = new.drop_duplicates("layer_name").set_index("layer_name")["n_inputs"]
    np.testing.assert_array_equal(view.meta["n_inputs"].to_numpy(dtype=np.int64),
                                  sizes.loc[view.meta["layer_name"].astype(str)].to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "extra column(s) change along trajectories" any more
        everything = load_view(tmp_path, "all")
    assert list(everything.meta.columns[-3:]) == list(SIZE_COLUMNS)
    assert everything.meta["n_inputs"].isna().sum() == len(everything) // 2
    assert list(to_view(small_table.drop(columns=optional)).meta.columns[-3:]) == list(SIZE_COLUMNS)


@pytest.mark.parametrize("column, value, message", [
    ("n_inputs", 0, "must be > 0"), ("n_weights", -3, "must be > 0"), ("n_outputs", 2.5, "expected integers"),
    ("gradfwdabs_id", "x", "expected numbers"),
])
def test_forward_gradient_and_size_columns_are_validated(small_table, column, value, message):
    frame = _with_recorded_columns(small_table)
    frame[column] = frame[column].astype(object)
    frame.loc[3, column] = value
    with pytest.raises(DatasetError, match=rf"(?=.*{message})(?=.*column '{column}', row 3: value)"):
        validate_table(frame)


def test_layer_sizes_must_be_the_same_along_a_trajectory(small_table, tmp_path):
    frame = _with_recorded_columns(small_table)
    frame.loc[5, "n_outputs"] += 1
    pattern = r"column 'n_outputs' differs between its checkpoints"
    with pytest.raises(DatasetError, match=pattern):
        validate_table(frame)
    _write_plain(frame, tmp_path / "runs.parquet")
    with pytest.raises(DatasetError, match=pattern):
        load_view(tmp_path / "runs.parquet")


def test_forward_gradient_on_data_without_it_is_one_clear_error(small_table, tmp_path):
    path = write_table(small_table, tmp_path / "old.parquet")  # the optional columns stored as nulls
    pattern = r"old\.parquet: this data has no forward-Jacobian recording \(gradfwd.*The paper used gradavg"
    for observables in ("gradfwd", "all_fwd", "gradfwdsq_id"):
        with pytest.raises(DatasetError, match=pattern):
            load_view(path, observables)
    with pytest.raises(DatasetError, match=r"^table: this data has no forward-Jacobian recording"):
        to_view(small_table.drop(columns=list(FORWARD_GRADIENT_NAMES)), "gradfwd")
    assert load_view(path, "grad").observables == list(MEASURE_GROUPS["grad"])  # the paper's gradient is there


def test_the_contract_module_is_re_exported_by_dataset():
    from lrid_analysis import contract

    for name in contract.__all__:
        assert getattr(dataset, name) is getattr(contract, name)
        assert name in dataset.__all__
