"""Tests for lrid_generate.sweep and the command line: end to end, resume, divergence."""

import dataclasses
import json
import math
import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from lrid_analysis.dataset import load_view, read_table
from lrid_analysis.observables import OBSERVABLE_NAMES
from lrid_analysis.synthetic import network_id
from lrid_generate.__main__ import main
from lrid_generate.presets import (
    DEFAULT_MODEL_SEED,
    PRESETS,
    Preset,
    RunSpec,
    SweepError,
    reference_weight_decay,
    resolve_model_seed,
    run_id,
)
from lrid_generate.recorder import FULL_ACCESS
from lrid_generate.store import COMPACTED_NAME, collect_runs, compact, shard_path
from lrid_generate.sweep import run_sweep
from lrid_generate.train import checkpoint_steps, rescale_initial_weights

TINY = PRESETS["tiny"]


def small_preset(**changes):
    """Two networks of a KNet on 8x8 digits: about a second each."""
    base = dict(name="mini", description="test", rules=("sgdm", "adam"), tasks=("digits",), architectures=("knet",),
                batch_sizes=(128,), model_seeds=(0,), dataset_seeds=(None,), epochs=1,
                learning_rates={"sgdm": 0.05, "adam": 0.01, "feedback": 0.1, "information": 0.02},
                width=0.25, n_checkpoints=3, n_val=16, init_scaling="unit_variance")
    base.update(changes)
    return Preset(**base)


@pytest.fixture(scope="module")
def tiny_out(tmp_path_factory):
    """The tiny preset, run once through the command line."""
    out = tmp_path_factory.mktemp("tiny")
    assert main(["sweep", "--preset", "tiny", "--out", str(out), "--quiet"]) == 0
    return out


# --------------------------------------------------------------------------- grid and specs


def test_run_id_matches_network_id():
    meta = pd.DataFrame({"task": ["digits", "signal1d"], "architecture": ["knet", "alexnet"],
                         "learning_rule": ["adam", "feedback"], "batch_size": [64, 128],
                         "model_seed": pd.array([None, 0], dtype="Int64"),
                         "dataset_seed": pd.array([0, None], dtype="Int64")})
    expected = network_id(meta).tolist()
    got = [run_id(*row) for row in zip(meta.task, meta.architecture, meta.learning_rule, meta.batch_size,
                                       [None, 0], [0, None])]
    assert got == expected


def test_checkpoint_steps_spread_evenly():
    steps = checkpoint_steps(100, 21)
    assert steps[0] == 0 and steps[-1] == 100 and len(steps) == 21
    assert (np.diff(steps) == 5).all()
    assert len(set(checkpoint_steps(23, 21))) == 21
    with pytest.raises(ValueError, match="cannot hold"):
        checkpoint_steps(10, 21)


def test_preset_grid_learning_rates_and_conditions():
    preset = PRESETS["embedded_v1"]
    specs = preset.specs()
    n = 1
    for values in (preset.rules, preset.tasks, preset.architectures, preset.batch_sizes, preset.model_seeds,
                   preset.dataset_seeds):
        n *= len(values)
    assert len(specs) == n == 576 and len({s.run_id for s in specs}) == n
    spec = next(s for s in specs if s.learning_rule == "feedback" and s.batch_size == 32 and s.task == "signal1d")
    assert spec.lr == pytest.approx(preset.learning_rates["feedback"] * math.sqrt(32 / 256))
    linear = dataclasses.replace(preset, lr_scaling="linear")
    assert linear.learning_rate("digits", "knet", "adam", 128) == pytest.approx(preset.learning_rates["adam"] / 2)
    noisy = [s for s in specs if len(s.conditions) > 1]
    assert {s.learning_rule for s in noisy} == {"feedback", "information"}
    assert {s.architecture for s in noisy} == {"knet"} and {s.task for s in noisy} == {"digits", "digits_simclr"}
    assert all(s.conditions[0] == FULL_ACCESS for s in specs)
    assert spec.weight_decay == reference_weight_decay("signal1d", spec.architecture)
    assert reference_weight_decay("digits_simclr", "alexnet") == 1e-6
    assert reference_weight_decay("digits", "resnet18") == 1e-4
    assert RunSpec.from_dict(json.loads(json.dumps(noisy[0].to_dict()))) == noisy[0]


def test_seed_mapping():
    assert resolve_model_seed(None) == DEFAULT_MODEL_SEED != 0
    assert resolve_model_seed(0) == 0


def test_presets_cli_lists_grids(capsys):
    assert main(["presets"]) == 0
    text = capsys.readouterr().out
    for name, preset in PRESETS.items():
        assert f"{name}:" in text and f"networks       {len(preset.specs())}" in text


def test_rescale_initial_weights_gives_unit_std():
    from lrid_generate.models import build_model, kernel_module

    torch.manual_seed(0)
    x = torch.randn(64, 1, 8, 8)
    model = build_model("knet", 10, (1, 8, 8), width=0.25, seed=0)
    factors = rescale_initial_weights(model, x)
    assert factors[0] > 100  # KNet's conv1 starts at std 1e-4
    for layer in model.observed_layers:
        kernel = kernel_module(layer.module)
        out = {}
        handle = kernel.register_forward_hook(lambda m, a, o: out.__setitem__("y", o))
        with torch.no_grad():
            model.eval()(x)
        handle.remove()
        y = out["y"] - kernel.bias.view((1, -1) + (1,) * (out["y"].ndim - 2))
        assert y.std().item() == pytest.approx(1.0, rel=1e-3), layer.name


def test_rescale_initial_weights_can_scale_feedback_with_forward_kernels():
    from lrid_generate.models import build_model, kernel_module
    from lrid_generate.rules import convert

    x = torch.randn(32, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for rule in ("feedback", "information"):
        models = [convert(build_model("resnet18", 10, (1, 8, 8), width=0.125, seed=0), rule, seed=0) for _ in range(2)]
        before = [kernel_module(layer.module).feedback_weight.detach().clone() for layer in models[0].observed_layers]
        plain = rescale_initial_weights(models[0], x)
        scaled = rescale_initial_weights(models[1], x, feedback=True)
        assert plain == pytest.approx(scaled, rel=1e-12)  # B does not change the forward pass
        for layer_plain, layer_scaled, b0, factor in zip(models[0].observed_layers, models[1].observed_layers,
                                                          before, scaled):
            assert torch.equal(kernel_module(layer_plain.module).feedback_weight, b0)
            assert torch.allclose(kernel_module(layer_scaled.module).feedback_weight, b0 * factor, rtol=1e-6)


# --------------------------------------------------------------------------- end to end


def test_tiny_preset_end_to_end(tiny_out):
    view = load_view(tiny_out, observables="all45")
    specs = TINY.specs()
    from lrid_generate.models import build_model

    n_layers = len(build_model("knet", 10, (1, 8, 8), width=TINY.width).layer_names)
    n_traj = sum(n_layers * len(s.conditions) for s in specs)
    assert view.X.shape == (n_traj, TINY.n_checkpoints, 45)
    full = view.meta["unit_fraction"].eq(1.0) & view.meta["noise_std"].eq(0.0)
    assert np.isfinite(view.X[full.to_numpy()]).any(axis=(1, 2)).all()
    assert set(view.meta["learning_rule"]) == set(TINY.rules)
    assert view.meta["model_seed"].isna().all()  # the None setting is kept as null
    np.testing.assert_allclose(view.epochs[:, 0], 0.0)
    np.testing.assert_allclose(view.epochs[:, -1], TINY.epochs)
    assert (view.layer_onehot.sum(axis=1) == 1).all()
    runs = json.loads((tiny_out / "runs.json").read_text())
    assert sorted(r["run_id"] for r in runs) == sorted(s.run_id for s in specs)
    for record in runs:
        assert record["status"] == "complete"
        assert 0.0 <= record["train_accuracy"] <= 1.0 and math.isfinite(record["val_loss"])
        assert record["model_seed_used"] == DEFAULT_MODEL_SEED
    sweep = json.loads((tiny_out / "sweep.json").read_text())["tiny"]
    assert sweep["versions"]["torch"] == torch.__version__ and sweep["networks"]["complete"] == len(specs)
    assert sweep["preset"]["learning_rates"] == TINY.learning_rates
    footer = pq.read_schema(shard_path(tiny_out, specs[0])).metadata
    record = json.loads(footer[b"lrid_run"])
    assert record["spec"] == specs[0].to_dict() and record["versions"]["torch"] == torch.__version__


def test_recorded_weights_change_over_training(tiny_out):
    view = load_view(tiny_out, observables=["weightraw_norm", "actraw_mean"])
    first, last = view.X[:, 0], view.X[:, -1]
    assert (np.abs(last - first) > 0).any(axis=1).all()


def test_resume_after_interruption(tiny_out, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(tiny_out, out)
    specs = TINY.specs()
    victim = shard_path(out, specs[1])
    victim.unlink()  # this network was being trained when the sweep was killed
    (victim.parent / f".{victim.name}.abc.tmp").write_bytes(b"partial write")  # left by an interrupted write
    untouched = {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}
    counts = run_sweep("tiny", out, progress=False)
    assert counts["skipped"] == len(specs) - 1 and counts["complete"] == 1 and counts["missing"] == 0
    assert all(p.stat().st_mtime_ns == t for p, t in untouched.items())
    view = load_view(out)  # raises on a missing or repeated checkpoint
    assert len(view) == len(load_view(tiny_out))
    again = run_sweep("tiny", out, progress=False)
    assert again["skipped"] == len(specs) and again["complete"] == 0


def test_changed_settings_are_refused(tiny_out, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(tiny_out, out)
    changed = dataclasses.replace(TINY, epochs=TINY.epochs + 1)
    with pytest.raises(SweepError, match="epochs"):
        run_sweep(changed, out, progress=False)


def test_compaction_keeps_data_and_resume(tiny_out, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(tiny_out, out)
    before = read_table(out).sort_values(["run_id", "layer_name", "unit_fraction", "noise_std", "checkpoint"])
    shard = shard_path(out, TINY.specs()[0])
    kept = shard.read_bytes()
    written = compact(out)
    assert written == [shard.parent / COMPACTED_NAME]
    assert [p.name for p in shard.parent.glob("*.parquet")] == [COMPACTED_NAME]
    after = read_table(out).sort_values(["run_id", "layer_name", "unit_fraction", "noise_std", "checkpoint"])
    pd.testing.assert_frame_equal(before.reset_index(drop=True), after.reset_index(drop=True))
    assert run_sweep("tiny", out, progress=False)["skipped"] == len(TINY.specs())
    assert len(collect_runs(out)) == len(TINY.specs())
    shard.write_bytes(kept)  # as if compaction was killed before deleting this shard
    compact(out)
    assert not shard.exists()
    assert len(load_view(out)) == len(load_view(tiny_out))


def test_divergence_is_recorded_not_raised(tmp_path):
    preset = small_preset(learning_rates={"sgdm": 1e6, "adam": 0.01})
    counts = run_sweep(preset, tmp_path, progress=False)
    assert counts["diverged"] == 1 and counts["complete"] == 1 and counts["failed"] == 0
    sgdm, adam = preset.specs()
    assert shard_path(tmp_path, sgdm, diverged=True).is_file() and not shard_path(tmp_path, sgdm).exists()
    view = load_view(tmp_path)
    assert set(view.meta["learning_rule"]) == {"adam"}  # the loader sees complete trajectories only
    runs = collect_runs(tmp_path).set_index("run_id")
    assert runs.loc[sgdm.run_id, "status"] == "diverged"
    assert runs.loc[sgdm.run_id, "checkpoints_recorded"] < preset.n_checkpoints
    partial = read_table(shard_path(tmp_path, sgdm, diverged=True))
    assert partial["checkpoint"].max() + 1 == runs.loc[sgdm.run_id, "checkpoints_recorded"]
    assert run_sweep(preset, tmp_path, progress=False)["skipped"] == 2  # not retried


def test_failed_network_does_not_stop_the_sweep(tmp_path, capsys):
    preset = small_preset(architectures=("knet", "no_such_net"), rules=("adam",), weight_decay={"no_such_net": 0.0})
    counts = run_sweep(preset, tmp_path, progress=False)
    assert counts["complete"] == 1 and counts["failed"] == 1 and counts["missing"] == 1
    assert "unknown architecture" in next(iter(counts["failures"].values()))
    assert "no_such_net" in capsys.readouterr().err


def test_noise_conditions_in_sweep_output(tiny_out):
    frame = read_table(tiny_out)
    fa = frame[frame["learning_rule"] == "feedback"]
    grid = set(zip(fa["unit_fraction"], fa["noise_std"]))
    assert grid == {(1.0, 0.0), (1.0, 0.5), (0.5, 0.0), (0.5, 0.5)}
    plain = fa[(fa["unit_fraction"] == 1.0) & (fa["noise_std"] == 0.0)].set_index(["layer_name", "checkpoint"])
    sub = fa[(fa["unit_fraction"] == 0.5) & (fa["noise_std"] == 0.0)].set_index(["layer_name", "checkpoint"])
    # subsampling half the units changes the norms (fewer terms) but never the layer or checkpoint set
    assert plain.index.sort_values().equals(sub.index.sort_values())
    assert (sub["weightsq_mean"] > 0).all() and (sub["weightraw_norm"] < plain.loc[sub.index, "weightraw_norm"]).all()


def test_two_workers(tmp_path):
    preset = small_preset()
    parallel, serial = tmp_path / "parallel", tmp_path / "serial"
    counts = run_sweep(preset, parallel, workers=2, progress=False)
    assert counts["complete"] == 2
    run_sweep(preset, serial, progress=False)
    a = read_table(parallel).sort_values(["run_id", "layer_name", "checkpoint"])
    b = read_table(serial).sort_values(["run_id", "layer_name", "checkpoint"])
    np.testing.assert_allclose(a[list(OBSERVABLE_NAMES)].to_numpy(np.float64),
                               b[list(OBSERVABLE_NAMES)].to_numpy(np.float64), rtol=1e-4, atol=1e-6)


def test_keep_freed_memory_sets_glibc_thresholds_or_says_it_cannot(monkeypatch):
    import ctypes
    import platform

    from lrid_generate.train import keep_freed_memory

    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert keep_freed_memory() is True
        assert keep_freed_memory() is True  # idempotent

    def no_libc(*args, **kwargs):
        raise OSError("no C library here")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    assert keep_freed_memory() is False
