"""lrid_benchmarks/packed_throughput.py: synthetic CIFAR copy, preset slice, and the harness end to end (tiny, CPU)."""

import json
import pickle

import numpy as np
import pytest

from lrid_benchmarks import packed_throughput as pt
from lrid_benchmarks.speed import discover, has_quick_flag
from lrid_generate.presets import PRESETS
from lrid_generate.datasets import load_cifar10


def test_synthetic_cifar10_is_readable_seeded_and_raw(tmp_path):
    folder = pt.write_synthetic_cifar10(tmp_path / "a", n_train=50, n_test=12, seed=3)
    x_tr, y_tr, x_val, y_val = load_cifar10(folder, n_val=12)
    assert x_tr.shape == (50, 3, 32, 32) and x_val.shape == (12, 3, 32, 32)
    assert set(np.unique(np.concatenate([y_tr, y_val]))) <= set(range(10))
    with open(folder / "data_batch_2", "rb") as handle:
        raw = pickle.load(handle, encoding="bytes")
    assert raw[b"data"].dtype == np.uint8 and raw[b"data"].shape == (10, 3072)
    assert y_tr[10:20].tolist() == raw[b"labels"]  # batches are concatenated in order
    again = pt.write_synthetic_cifar10(tmp_path / "b", n_train=50, n_test=12, seed=3)
    other = pt.write_synthetic_cifar10(tmp_path / "c", n_train=50, n_test=12, seed=4)
    for name in pt.CIFAR_FILES:
        assert (folder / name).read_bytes() == (again / name).read_bytes()
    assert (folder / "data_batch_1").read_bytes() != (other / "data_batch_1").read_bytes()
    with pytest.raises(ValueError, match="multiple of 5"):
        pt.write_synthetic_cifar10(tmp_path / "d", n_train=52)


def test_benchmark_preset_covers_the_grid_at_the_preset_checkpoint_density():
    base = PRESETS["cifar10_knet"]
    sliced = pt.benchmark_preset(epochs=2)
    specs = sliced.specs()
    assert len(specs) == len(base.architectures) * len(base.rules) * len(base.batch_sizes) == 48
    assert {(s.architecture, s.learning_rule, s.batch_size) for s in specs} == {
        (a, r, b) for a in base.architectures for r in base.rules for b in base.batch_sizes}
    assert all(s.model_seed is None and s.dataset_seed is None and s.epochs == 2 for s in specs)
    # the preset records 20 times over 20 epochs: one recording per epoch plus the initial one
    assert sliced.n_checkpoints == 3 and pt.benchmark_preset(epochs=20).n_checkpoints == base.n_checkpoints
    assert pt.benchmark_preset(epochs=1).n_checkpoints == 2
    # learning rates are the preset's
    spec = next(s for s in specs if s.learning_rule == "information" and s.batch_size == 512)
    assert spec.lr == pytest.approx(base.learning_rate("cifar10", spec.architecture, "information", 512))
    with pytest.raises(ValueError, match="resnet18"):
        pt.benchmark_preset(architectures=["resnet18"])
    with pytest.raises(ValueError, match="epochs"):
        pt.benchmark_preset(epochs=0)


def test_quick_run_measures_both_sides_and_derives_the_ratios(tmp_path):
    out = tmp_path / "packed.json"
    n_train, batch, steps, epochs = 320, 64, 4, 1
    document = pt.run_packed_benchmark(
        device="cpu", workers=(1, 2), output=out, quick=True, n_train=n_train, epochs=epochs,
        batch_sizes=(batch,), architectures=("knet",), plain_batch=batch, plain_steps=steps, plain_warmup=1,
        verbose=False)
    assert json.loads(out.read_text()) == json.loads(json.dumps(document))
    assert set(document["results"]) == {"1", "2"}
    n_networks = 4  # knet x four rules x one batch size
    for key, result in document["results"].items():
        k = int(key)
        plain, lrid = result["plain"], result["lrid"]
        assert plain["workers"] == k and len(plain["per_process_images_per_s"]) == k
        assert plain["images"] == k * steps * batch
        assert plain["images_per_s"] == pytest.approx(plain["images"] / plain["wall_seconds"])
        assert all(np.isfinite(plain["final_losses"]))
        assert lrid["networks"] == lrid["complete"] == n_networks and lrid["diverged"] == 0
        assert lrid["images"] == n_networks * epochs * (n_train // batch) * batch
        assert lrid["images_per_s"] == pytest.approx(lrid["images"] / lrid["wall_seconds"])
        assert lrid["images_per_s_busy"] == pytest.approx(
            lrid["images"] / (lrid["busy_seconds"] / min(k, n_networks)))
        assert 0 < lrid["record_fraction"] < 1
        assert plain["images_per_s"] > 0 and lrid["images_per_s"] > 0
        assert result["ratio"] == pytest.approx(lrid["images_per_s"] / plain["images_per_s"])
        assert result["meets_target"] == (result["ratio"] >= pt.TARGET)
    best_plain = max(r["plain"]["images_per_s"] for r in document["results"].values())
    best_lrid = max(r["lrid"]["images_per_s"] for r in document["results"].values())
    assert document["ratio"] == pytest.approx(best_lrid / best_plain)
    assert document["meets_target"] == (document["ratio"] >= 0.5)
    assert "GPU target" in document["summary"]
    assert document["machine"]["device"] == "cpu"
    params = document["parameters"]
    assert params["data"] == {"kind": "synthetic", "n_train": n_train, "n_test": 64, "seed": 0}
    assert params["lrid"]["networks"] == n_networks and params["plain"]["steps"] == steps


def test_errors_are_named(tmp_path):
    data = pt.write_synthetic_cifar10(tmp_path / "data", n_train=20, n_test=4)
    with pytest.raises(RuntimeError, match="plain batch 64 exceeds the 20 training images"):
        pt.plain_packed_throughput(1, "cpu", data, batch=64, steps=1, warmup=0, width=0.25, timeout=120)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "something").write_text("x")
    with pytest.raises(RuntimeError, match="not empty"):
        pt.lrid_packed_throughput(pt.benchmark_preset(epochs=1), 1, "cpu", data, busy)
    with pytest.raises(ValueError, match="workers"):
        pt.run_packed_benchmark(workers=(), output=tmp_path / "x.json", quick=True, verbose=False)


def test_listed_with_a_quick_mode():
    found = {b.name: b for b in discover()}
    assert "packed_throughput" in found
    assert has_quick_flag(pt.__file__)
