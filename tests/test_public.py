"""Tests for lrid_analysis.public: restricted unpickling, checks and conversion."""

from __future__ import annotations

import copy
import copyreg
import hashlib
import json
import os
import pickle
import pickletools
import subprocess
import sys
import tracemalloc
import warnings

import numpy as np
import pandas as pd
import public_pickles
import pyarrow.parquet as pq
import pytest
from public_pickles import meta_slice, synthetic_public_dict, write_pickle

from lrid_analysis import public, unpickle
from lrid_analysis.dataset import LAYER_POSITIONS, load_view
from lrid_analysis.observables import OBSERVABLE_NAMES
from lrid_analysis.synthetic import network_id, public_meta


@pytest.fixture(scope="module")
def full_meta():
    return public_meta()


@pytest.fixture(scope="module")
def full_data(full_meta):
    return synthetic_public_dict(full_meta, seed=1)


@pytest.fixture(scope="module")
def slice_meta():
    return meta_slice(240, seed=3)


@pytest.fixture()
def slice_data(slice_meta):
    return synthetic_public_dict(slice_meta, seed=2)


# ---------------------------------------------------------------------------
# conversion round trip


def test_full_size_round_trip_keeps_values_order_and_meta(tmp_path, full_meta, full_data):
    pkl = write_pickle(full_data, tmp_path / "dataset.pkl", style="py3", protocol=2)
    out = tmp_path / "converted"
    path = public.convert_public(pkl, out)  # strict: full size, balanced rules

    assert path == out / "source=nayebi2020" / "part-0.parquet"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.parquet")) == [
        "source=nayebi2020/part-0.parquet"
    ]
    view = load_view(out, observables="all45")
    # values: bit-identical float32, infinities included, in the public row order
    assert view.X.dtype == np.float32
    np.testing.assert_array_equal(view.X, full_data["X"])
    assert np.isinf(view.X).sum() == np.isinf(full_data["X"]).sum() > 0
    meta = view.meta
    for column in ("task", "architecture", "learning_rule", "layer_name"):
        assert meta[column].astype(str).tolist() == full_meta[column].astype(str).tolist()
    assert meta["batch_size"].tolist() == full_meta["batch_size"].tolist()
    for column in ("model_seed", "dataset_seed"):
        expected_null = full_meta[column].isna().to_numpy()
        assert meta[column].isna().to_numpy().tolist() == expected_null.tolist()
        assert (meta[column][~expected_null] == 0).all()
    assert (meta["source"] == "nayebi2020").all()
    assert meta["run_id"].tolist() == network_id(full_meta).tolist()
    assert meta["layer_position"].tolist() == full_meta["layer_position_inferred"].tolist()
    onehot = full_data["X_cat"][:, 0, :]
    np.testing.assert_array_equal(view.layer_onehot, onehot)
    np.testing.assert_array_equal(view.epochs, np.tile(5.0 * np.arange(21), (len(full_meta), 1)))
    assert (meta["unit_fraction"] == 1.0).all() and (meta["noise_std"] == 0.0).all()
    assert (meta["obs_seed"] == 0).all()
    # 1056 networks, each with layer indices 0..n_layers-1
    assert meta["run_id"].nunique() == 1056
    for _, group in meta.groupby("run_id"):
        assert sorted(group["layer_index"].tolist()) == list(range(len(group)))

    footer = pq.read_schema(path).metadata
    assert footer[b"lrid.source_sha256"].decode() == hashlib.sha256(pkl.read_bytes()).hexdigest()
    assert footer[b"lrid.epochs_per_checkpoint"] == b"5.0"


@pytest.mark.parametrize("protocol", [0, 2])
def test_python2_style_pickle_with_bytes_text(tmp_path, slice_meta, protocol):
    """Python 2 ``str`` opcodes read with latin1, ``S`` text arrays, bytes keys, float64 X."""
    data = synthetic_public_dict(slice_meta, seed=4, text="bytes", x_dtype=np.float64)
    data[b"extra_unknown_key"] = np.arange(3)
    pkl = write_pickle(data, tmp_path / "dataset.pkl", style="py2", protocol=protocol)
    raw = pkl.read_bytes()
    assert b"numpy.core.multiarray" in raw and b"_codecs" not in raw  # really the Python 2 layout

    path = public.convert_public(pkl, tmp_path / "out", strict=False)
    view = load_view(path.parent.parent, observables="all45")
    np.testing.assert_array_equal(view.X, data[b"X"].astype(np.float32))
    assert view.meta["layer_name"].tolist() == slice_meta["layer_name"].tolist()
    assert view.meta["learning_rule"].tolist() == slice_meta["learning_rule"].tolist()
    assert view.meta["model_seed"].isna().sum() == slice_meta["model_seed"].isna().sum()


def test_layer_index_matches_hand_written_resnet_and_alexnet_orders(full_meta):
    frame_meta = full_meta.assign(run_id=network_id(full_meta))
    # ResNet-18 v1: stem, 4 groups x 2 blocks, projection conv0 only in block 0, readout
    resnet18 = ["conv0"]
    for group in range(1, 5):
        for block in range(2):
            resnet18 += [f"block_group{group}_{block}/conv{c}" for c in range(0 if block == 0 else 1, 3)]
    resnet18 += ["dense"]
    alexnet_simclr = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7",
                      "head_contrastive/nl_0", "head_contrastive/nl_1"]
    cases = {
        "imagenet-resnet18-adam-bs256-ms0-dsNone": resnet18,
        "simclr-alexnet-sgdm-bs256-ms0-dsNone": alexnet_simclr,
    }
    rows = frame_meta[frame_meta["run_id"].isin(cases)]
    sub = synthetic_public_dict(rows.drop(columns="run_id"), seed=0)
    frame = public.public_frame(sub, strict=False)
    per_row = frame[frame["checkpoint"] == 0]
    for run_id, expected in cases.items():
        got = per_row[per_row["run_id"] == run_id].sort_values("layer_index")
        assert got["layer_name"].tolist() == expected
        assert got["layer_index"].tolist() == list(range(len(expected)))


def test_layer_depth_key_unknown_name_gives_null_index(slice_meta, slice_data):
    assert public.layer_depth_key("mystery_layer") is None
    assert public.layer_depth_key("block_layer2_0/conv0") < public.layer_depth_key("block_layer2_0/conv1")
    data = copy.deepcopy(slice_data)
    data["meta"]["layer_name"][0] = "mystery"
    with pytest.warns(UserWarning, match="mystery"):
        frame = public.public_frame(data, strict=False)
    first = frame[frame["checkpoint"] == 0].reset_index(drop=True)
    assert pd.isna(first.loc[0, "layer_index"])
    assert first["layer_index"].iloc[1:].notna().all()


# ---------------------------------------------------------------------------
# checks against what is known about the public file


def _break(data, change):
    data = copy.deepcopy(data)
    change(data)
    return data


def _swap_obs(d):
    d["obs_keys"] = d["obs_keys"][[1, 0] + list(range(2, 45))]


def _cat_not_onehot(d):
    d["X_cat"][5, :, :] = [1, 1, 0]


def _cat_varies(d):
    d["X_cat"][7, 10:, :] = np.roll(d["X_cat"][7, 0], 1)


def _bad_label(d):
    d["Y"] = d["Y"].astype("<U11")
    d["Y"][3] = "hebbian"


def _y_disagrees(d):
    i = int(np.flatnonzero(d["Y"] == "adam")[0])
    d["Y"][i] = "sgdm"


def _drop_field(d):
    names = [n for n in d["meta"].dtype.names if n != "batch_size"]
    d["meta"] = np.rec.fromarrays([d["meta"][n] for n in names], names=names)


def _bad_checkpoints(d):
    d["meta"]["end_idxs"][4] = 20


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.pop("X_cat"), r"missing key\(s\) \['X_cat'\]"),
        (lambda d: d.update(X=d["X"][:, :20]), r"X has shape \(240, 20, 45\)"),
        (_swap_obs, "obs_keys differ.*position 0"),
        (_cat_not_onehot, "X_cat row 5 is not a one-hot"),
        (_cat_varies, "X_cat row 7 changes along the trajectory"),
        (_bad_label, r"unknown learning rule\(s\) \['hebbian'\]"),
        (_y_disagrees, "Y and meta learning_rule disagree at row"),
        (_drop_field, r"lacks field\(s\) \['batch_size'\]"),
        (lambda d: d.update(meta={"task": d["meta"]["task"]}), "should be a numpy record array"),
        (_bad_checkpoints, "meta row 4 covers checkpoints 0..20"),
    ],
)
def test_public_frame_rejects_unexpected_data(slice_data, change, message):
    with pytest.raises(public.PublicDataError, match=message):
        public.public_frame(_break(slice_data, change), strict=False)


def test_unknown_extra_keys_are_ignored(slice_data):
    data = dict(slice_data, notes=np.arange(4), more={"a": 1})
    frame = public.public_frame(data, strict=False)
    assert len(frame) == 240 * 21


def test_strict_requires_full_balanced_file(slice_data, full_data):
    with pytest.raises(public.PublicDataError, match="240 rows.*20736.*--no-strict"):
        public.public_frame(slice_data)
    unbalanced = dict(full_data, Y=full_data["Y"].copy(), meta=full_data["meta"].copy())
    i = int(np.flatnonzero(unbalanced["Y"] == "adam")[0])
    unbalanced["Y"][i] = "sgdm"
    unbalanced["meta"]["learning_rule"][i] = "sgdm"
    with pytest.raises(public.PublicDataError, match="not balanced.*'sgdm': 5185"):
        public.public_frame(unbalanced)


def test_seeds_none_become_nulls_and_infinities_survive(slice_meta, slice_data):
    frame = public.public_frame(slice_data, strict=False)
    first = frame[frame["checkpoint"] == 0]
    assert first["model_seed"].isna().tolist() == slice_meta["model_seed"].isna().tolist()
    assert first["dataset_seed"].isna().tolist() == slice_meta["dataset_seed"].isna().tolist()
    values = frame[list(OBSERVABLE_NAMES)].to_numpy()
    assert (values == np.inf).sum() == (slice_data["X"] == np.inf).sum() > 0
    assert (values == -np.inf).sum() == (slice_data["X"] == -np.inf).sum() > 0
    assert set(frame["layer_position"]) <= set(LAYER_POSITIONS)


# ---------------------------------------------------------------------------
# restricted unpickler


class _Payload:
    """An object whose unpickling would call ``func(*args)``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _creators(target):
    code = f"open({str(target)!r}, 'w').close()"
    return {
        "os.system": _Payload(os.system, f"touch {target}"),
        "subprocess.call": _Payload(subprocess.call, ["touch", str(target)]),
        "builtins.eval": _Payload(eval, code),
        "builtins.exec": _Payload(exec, code),
        "builtins.open": _Payload(open, str(target), "w"),
        "numpy.save": _Payload(np.save, str(target), np.zeros(2)),
    }


@pytest.mark.parametrize("kind", ["os.system", "subprocess.call", "builtins.eval", "builtins.exec",
                                  "builtins.open", "numpy.save"])
def test_malicious_pickle_is_refused_and_not_executed(tmp_path, kind):
    target = tmp_path / "pwned"
    payload = _creators(target)[kind]
    # the payload hides after legitimate arrays, as in a tampered dataset.pkl
    data = {"X": np.zeros((2, 21, 45), np.float32), "obs_keys": np.array(OBSERVABLE_NAMES), "evil": payload}
    pkl = tmp_path / "dataset.pkl"
    pkl.write_bytes(pickle.dumps(data, protocol=2))
    with pytest.raises(unpickle.UnsafePickleError) as info:
        unpickle.safe_load_pickle(pkl)
    err = info.value
    named = [arg.split(" ") for op, arg, _ in pickletools.genops(pkl.read_bytes()) if op.name == "GLOBAL"]
    assert [err.module, err.name] == named[-1] and err.name == payload.func.__name__
    assert f"{err.module}.{err.name}" in str(err) and str(pkl) in str(err)
    assert "nothing from it was executed" in str(err)
    assert not target.exists()
    # and the same file through the converter
    with pytest.raises(unpickle.UnsafePickleError):
        public.convert_public(pkl, tmp_path / "out", strict=False)
    assert not target.exists()
    assert not (tmp_path / "out").exists()


def test_getattr_gadget_is_refused(tmp_path):
    # protocol 0: builtins.getattr(numpy.ndarray, "__subclasses__")
    pkl = tmp_path / "gadget.pkl"
    pkl.write_bytes(b"c__builtin__\ngetattr\n(cnumpy\nndarray\nV__subclasses__\ntR.")
    with pytest.raises(unpickle.UnsafePickleError, match=r"__builtin__\.getattr"):
        unpickle.safe_load_pickle(pkl)


def test_guarded_callables_refuse_other_arguments(tmp_path):
    frozen = tmp_path / "frozen.pkl"
    frozen.write_bytes(pickle.dumps(_Payload(copyreg._reconstructor, frozenset, frozenset, (1, 2)), protocol=2))
    with pytest.raises(unpickle.UnsafePickleError, match="only numpy array classes") as info:
        unpickle.safe_load_pickle(frozen)
    assert str(frozen) in str(info.value)
    rot = tmp_path / "rot.pkl"
    rot.write_bytes(b"c_codecs\nencode\n(Vabc\nVrot13\ntR.")
    with pytest.raises(unpickle.UnsafePickleError, match="rot13"):
        unpickle.safe_load_pickle(rot)


def test_reconstructor_with_numpy_classes_is_admitted(tmp_path):
    # protocol 0: copy_reg._reconstructor(numpy.ndarray, numpy.ndarray, (3,))
    pkl = tmp_path / "reconstructor.pkl"
    pkl.write_bytes(b"ccopy_reg\n_reconstructor\n(cnumpy\nndarray\ncnumpy\nndarray\n(I3\nttR.")
    array = unpickle.safe_load_pickle(pkl)
    assert type(array) is np.ndarray and array.shape == (3,)
    # plain Python 3 pickles of arrays, record arrays and containers load unchanged
    record = np.rec.fromarrays([np.array(["a", "b"]), np.array([None, 0], dtype=object)], names=["s", "o"])
    obj = {"r": record, "s": {1, 2}, "f": frozenset([3]), "c": 1 + 2j, "sl": slice(1, 5), "l": [np.float32(2.5)]}
    for protocol in (0, 2, pickle.HIGHEST_PROTOCOL):
        path = tmp_path / f"ok{protocol}.pkl"
        path.write_bytes(pickle.dumps(obj, protocol=protocol))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            back = unpickle.safe_load_pickle(path)
        assert type(back["r"]) is np.recarray and back["r"]["s"].tolist() == ["a", "b"]
        assert back["r"]["o"].tolist() == [None, 0]
        assert (back["s"], back["f"], back["c"], back["sl"]) == ({1, 2}, frozenset([3]), 1 + 2j, slice(1, 5))
        assert back["l"][0] == np.float32(2.5)


@pytest.mark.parametrize("content", [b"", b"not a pickle at all", None])
def test_unreadable_pickle_gives_clear_error(tmp_path, slice_data, content):
    pkl = tmp_path / "dataset.pkl"
    if content is None:  # truncated download
        content = pickle.dumps(slice_data, protocol=2)[:5000]
    pkl.write_bytes(content)
    with pytest.raises(unpickle.UnreadablePickleError, match="not a readable pickle"):
        unpickle.safe_load_pickle(pkl)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        public.convert_public(tmp_path / "nope.pkl", tmp_path / "out")


# ---------------------------------------------------------------------------
# hostile pickles: crafted dtypes (issue 9 item 1), memory bombs (item 2)

_TOUCH = """
import sys
import numpy as np
from lrid_analysis.unpickle import UnsafePickleError, safe_load_pickle

for path in sys.argv[1:]:
    try:
        obj = safe_load_pickle(path)
    except UnsafePickleError as err:
        print("REFUSED", path, " ".join(str(err).split()), flush=True)
        continue
    # use what was loaded, as the converter would: object pointers read from file bytes crash here
    values = [obj[name] for name in obj.dtype.names] if getattr(obj, "dtype", None) is not None and obj.dtype.names \\
        else [obj]
    print("LOADED", path, repr(values)[:100], flush=True)
"""


def test_crafted_object_dtypes_are_refused_and_the_process_survives(tmp_path):
    paths = []
    for i, (name, content) in enumerate(public_pickles.crafted_pickles().items()):
        paths.append(tmp_path / f"crafted{i}.pkl")
        paths[-1].write_bytes(content)
    # in a subprocess: a segfault shows as a failed test, it does not kill pytest
    result = subprocess.run([sys.executable, "-c", _TOUCH, *map(str, paths)], check=False, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"loading crafted pickles killed the process: rc={result.returncode} {result.stderr}"
    lines = result.stdout.splitlines()
    assert len(lines) == len(paths) and all(line.startswith("REFUSED") for line in lines), result.stdout
    flags, scalar, rebuilt, field_rebuilt, frombuffer = lines
    assert "claims flags 0x0 where its fields need 0x1b (they hold Python objects)" in flags
    assert "holds Python objects and would be filled from raw file bytes" in scalar
    assert "only a dtype or array just created by numpy's reconstruction can be built, once" in rebuilt
    assert "can be built, once" in field_rebuilt
    assert "claims flags 0x0" in frombuffer
    assert all("nothing from it was executed" in line for line in lines)


_MEASURE = """
import json, resource, sys, time
import pyarrow, pyarrow.parquet  # imported once here, so that they do not count as a bomb's memory
from lrid_analysis import public

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

results = {}
for name, path, strict in json.loads(sys.argv[1]):
    before, start = peak_mb(), time.perf_counter()
    try:
        public.convert_public(path, path + ".out", strict=strict)
        outcome = "converted"
    except Exception as err:
        outcome = type(err).__name__ + ": " + " ".join(str(err).split())
    results[name] = {"seconds": time.perf_counter() - start, "peak_mb": peak_mb() - before, "outcome": outcome}
print(json.dumps(results))
"""


def test_memory_bombs_are_refused_fast_in_bounded_memory(tmp_path):
    cases = []
    for i, (name, (content, strict)) in enumerate(public_pickles.bomb_pickles().items()):
        path = tmp_path / f"bomb{i}.pkl"
        path.write_bytes(content)
        cases.append((name, str(path), strict))
    # a legitimate small file first: its conversion sets the baseline the bombs are measured against
    legit = write_pickle(synthetic_public_dict(meta_slice(20, seed=7), seed=7), tmp_path / "legit.pkl")
    cases.insert(0, ("legitimate", str(legit), False))
    result = subprocess.run([sys.executable, "-c", _MEASURE, json.dumps(cases)], check=False, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)
    assert results.pop("legitimate")["outcome"] == "converted"
    assert len(results) == len(cases) - 1
    for name, got in results.items():
        assert got["outcome"].startswith(("UnsafePickleError", "UnreadablePickleError")), (name, got)
        assert got["seconds"] < 1.0, (name, got)
        assert got["peak_mb"] < 200, (name, got)
    assert "refused call of numpy.ndarray" in results["zero-stride 1e5 rows"]["outcome"]
    assert "refused bytearray(int)" in results["bytearray(N)"]["outcome"]
    assert "memory bomb" in results["encode of one string 400 times"]["outcome"]
    assert "refused SETITEM into bytearray" in results["bytearray doubled in place"]["outcome"]
    for name in ("4e6 empty lists", "4e6 MARKs", "1e6 empty sets"):
        assert "bytes of Python objects" in results[name]["outcome"] and "memory bomb" in results[name]["outcome"]


@pytest.mark.parametrize(("style", "protocol", "text"), [("py2", 0, "unicode"), ("py2", 2, "bytes"),
                                                     ("py3", 0, "bytes"), ("py3", 2, "bytes"), ("py3", 5, "unicode")])
def test_public_pickles_leave_headroom_in_the_object_budget(tmp_path, style, protocol, text):
    """Every opcode is charged; a public-layout file (arrays plus a record array of row objects) uses under half."""
    data = synthetic_public_dict(meta_slice(60, seed=8), seed=8, text=text)
    pkl = write_pickle(data, tmp_path / "dataset.pkl", style=style, protocol=protocol)
    with open(pkl, "rb") as file:
        unpickler = unpickle.RestrictedUnpickler(file, encoding="latin1")
        loaded = unpickler.load()
    ops = sum(1 for _ in pickletools.genops(pkl.read_bytes())) if style == "py3" else None
    if ops is not None:  # the charge is one cost per opcode (no empty sets here)
        assert unpickler.used["objects"] == ops * unpickle.OBJECT_COST
    assert 0 < unpickler.used["objects"] < unpickler.budget / 2
    key = b"meta" if text == "bytes" and style == "py3" else "meta"
    assert len(loaded[key]) == 60


def test_strict_row_count_is_checked_before_anything_is_allocated():
    n = 10_000_000  # in-memory zero-stride arrays: what the row check must stop before touching
    data = {
        "X": np.broadcast_to(np.float32(0), (n, 21, 45)),
        "X_cat": np.broadcast_to(np.float64(0), (n, 21, 3)),
        "Y": np.broadcast_to(np.array("adam"), (n,)),
        "obs_keys": np.array(OBSERVABLE_NAMES),
        "meta": np.broadcast_to(np.zeros(1, dtype=[("task", "U8")]), (n,)),
    }
    tracemalloc.start()
    try:
        with pytest.raises(public.PublicDataError, match=f"{n} rows, the public dataset has 20736"):
            public.public_frame(data, strict=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 << 20


def test_array_larger_than_the_public_schema_is_refused_in_strict_mode(tmp_path):
    rows = 20736 + 1  # one row more than the public X, with every byte present in the file
    pkl = tmp_path / "big.pkl"
    pkl.write_bytes(pickle.dumps({"X": np.zeros((rows, 21, 45), np.float32)}, protocol=2))
    with pytest.raises(unpickle.UnsafePickleError, match=r"shape \(20737, 21, 45\).*more than the 19,595,520"):
        public.convert_public(pkl, tmp_path / "out", strict=True)
    # not strict: the file holds the bytes, so it is read (and then fails the schema check)
    with pytest.raises(public.PublicDataError, match="missing key"):
        public.convert_public(pkl, tmp_path / "out", strict=False)


# ---------------------------------------------------------------------------
# other formats (issue 9 item 3)


def test_protocol_5_numpy_pickle_converts(tmp_path, slice_meta, slice_data):
    pkl = write_pickle(slice_data, tmp_path / "dataset.pkl", protocol=5)
    assert b"_frombuffer" in pkl.read_bytes()
    path = public.convert_public(pkl, tmp_path / "out", strict=False)
    view = load_view(path.parent.parent, observables="all45")
    np.testing.assert_array_equal(view.X, slice_data["X"])
    assert view.meta["layer_name"].tolist() == slice_meta["layer_name"].tolist()


def test_parquet_given_for_conversion_says_it_is_already_parquet(tmp_path, slice_data):
    pkl = write_pickle(slice_data, tmp_path / "dataset.pkl")
    path = public.convert_public(pkl, tmp_path / "out", strict=False)
    with pytest.raises(public.PublicDataError, match="already a Parquet file.*nothing to convert"):
        public.convert_public(path, tmp_path / "again", strict=False)


def test_footer_records_source_path_digest_and_whether_it_was_checked(tmp_path, slice_data):
    pkl = write_pickle(slice_data, tmp_path / "dataset.pkl")
    digest = hashlib.sha256(pkl.read_bytes()).hexdigest()
    path = public.convert_public(pkl, tmp_path / "out", strict=False)
    footer = pq.read_schema(path).metadata
    assert footer[b"lrid.source_path"].decode() == str(pkl.resolve())
    assert footer[b"lrid.source_sha256"].decode() == digest
    assert footer[b"lrid.source_sha256_verified"] == b"False" and b"lrid.source_url" not in footer
    path = public.convert_public(pkl, tmp_path / "out", strict=False, sha256=digest.upper(),
                                 source_url="http://mirror.example/dataset.pkl")
    footer = pq.read_schema(path).metadata
    assert footer[b"lrid.source_sha256_verified"] == b"True"
    assert footer[b"lrid.source_url"] == b"http://mirror.example/dataset.pkl"
    with pytest.raises(public.PublicDataError, match=f"SHA-256 is {digest}, expected {'0' * 64}"):
        public.convert_public(pkl, tmp_path / "other", strict=False, sha256="0" * 64)
    assert not (tmp_path / "other").exists()


def test_every_numpy_dtype_layout_round_trips_through_the_checked_build(tmp_path):
    arrays = {
        "aligned": np.zeros(3, dtype=np.dtype([("a", "f8"), ("b", "i1")], align=True)),
        "padded": np.zeros(2, dtype={"names": ["a", "b"], "formats": ["f8", "i1"], "offsets": [0, 8], "itemsize": 16}),
        "subarray": np.arange(6.0).view([("v", "f8", (3,))]),
        "titles": np.zeros(1, dtype={"names": ["a"], "formats": ["f8"], "titles": ["T"]}),
        "big endian": np.arange(3, dtype=">i4"),
        "unicode": np.array(["abc", "é"]),
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "objects": np.array([None, "x", 3], dtype=object),
        "nested": np.zeros(2, dtype=[("inner", [("x", "<f4"), ("o", "O")]), ("s", "S3")]),
    }
    for protocol in range(6):
        path = tmp_path / f"dtypes{protocol}.pkl"
        path.write_bytes(pickle.dumps(arrays, protocol=protocol))
        back = unpickle.safe_load_pickle(path)
        trusted = pickle.loads(path.read_bytes())  # what numpy itself rebuilds (big-endian data becomes native)
        for name, array in trusted.items():
            assert back[name].dtype == array.dtype and back[name].dtype.flags == array.dtype.flags, (name, protocol)
            assert repr(back[name].tolist()) == repr(array.tolist()) == repr(arrays[name].tolist()), (name, protocol)


def _struct_state(flags, offset=0, itemsize=8):
    P = public_pickles
    return P.tup(P.integer(3), P.text("|"), P.pickle.NONE, P.tup(P.text("a")),
                 P.pickle.EMPTY_DICT + P.text("a") + P.tup(P.dtype_op("f8"), P.integer(offset)) + P.pickle.SETITEM,
                 P.integer(itemsize), P.integer(1), P.integer(flags))


def test_dtype_state_checks_tolerate_version_flags_only_without_objects(tmp_path):
    P = public_pickles
    data = P.raw(np.arange(2.0).tobytes())

    def load(state):
        path = tmp_path / "dtype.pkl"
        path.write_bytes(P.program(P.array_op((2,), P.dtype_op("V8", state), data)))
        return unpickle.safe_load_pickle(path)

    # numpy 2 sets NEEDS_PYAPI (0x10) on every structured dtype, older numpy did not: both load the same
    for flags in (0x10, 0x0):
        back = load(_struct_state(flags))
        assert back["a"].tolist() == [0.0, 1.0] and back.dtype.flags == np.dtype([("a", "f8")]).flags
    with pytest.raises(unpickle.UnsafePickleError, match="claims flags 0x2 where its fields need 0x10"):
        load(_struct_state(0x2))  # "list pickle" for a float field
    with pytest.raises(unpickle.UnsafePickleError, match="refused dtype state: .*requires 16 bytes"):
        load(_struct_state(0x10, offset=8))  # a field beyond the item size would read past each element
