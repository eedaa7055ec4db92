"""Tests for lrid_generate.sweep and the command line: end to end, resume, divergence."""

import dataclasses
import errno
import json
import math
import os
import pickle
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

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
from lrid_generate.claims import claim_path, is_stale, live_claims, pid_alive, release, try_claim
from lrid_generate.store import (
    COMPACTED_NAME,
    _update_sweep_json,
    check_writable,
    collect_runs,
    compact,
    finalize,
    shard_path,
)
from lrid_generate.sweep import device_for_rank, parse_shard, run_sweep, select_shard, shard_from_env
from lrid_generate.tasks import PAPER_TASKS
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
    view = load_view(tiny_out, observables="all45", full_access=False)
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
    assert not list(out.rglob("*.tmp"))  # the killed writer's leftover is cleaned up
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


def test_compaction_can_keep_only_the_admissible_statistics_of_noisy_rows(tiny_out, tmp_path, capsys):
    from lrid_analysis.observables import ADMISSIBLE_NAMES, FORWARD_GRADIENT_NAMES

    full, lean = tmp_path / "full", tmp_path / "lean"
    shutil.copytree(tiny_out, full)
    shutil.copytree(tiny_out, lean)
    keys = ["run_id", "layer_name", "unit_fraction", "noise_std", "obs_seed", "checkpoint"]
    before = read_table(tiny_out).sort_values(keys).reset_index(drop=True)
    assert main(["compact", "--out", str(lean), "--noisy-statistics", "admissible"]) == 0
    compact(full)  # the tiny preset keeps everything
    after = read_table(lean).sort_values(keys).reset_index(drop=True)
    noisy = ~((after["unit_fraction"] == 1.0) & (after["noise_std"] == 0.0))
    assert noisy.any() and (~noisy).any()
    dropped = [n for n in OBSERVABLE_NAMES if n not in ADMISSIBLE_NAMES]
    assert after.loc[noisy, dropped].isna().all().all()
    kept = list(ADMISSIBLE_NAMES) + list(FORWARD_GRADIENT_NAMES)
    pd.testing.assert_frame_equal(after[kept], before[kept])  # admissible and gradfwd values untouched
    pd.testing.assert_frame_equal(after[~noisy], before[~noisy])  # full-access rows whole
    pd.testing.assert_frame_equal(read_table(full).sort_values(keys).reset_index(drop=True), before)
    files = {name: next(Path(folder).rglob(COMPACTED_NAME)) for name, folder in (("full", full), ("lean", lean))}
    assert pq.read_schema(files["lean"]).metadata[b"lrid_noisy_statistics"] == b"admissible"
    assert pq.read_schema(files["full"]).metadata[b"lrid_noisy_statistics"] == b"all"
    assert files["lean"].stat().st_size < files["full"].stat().st_size
    assert PRESETS["embedded"].noisy_statistics == "admissible" and PRESETS["tiny"].noisy_statistics == "all"
    with pytest.raises(SweepError, match="noisy_statistics"):
        compact(full, noisy_statistics="some")


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


def test_collect_runs_reports_the_current_paper_task(tiny_out, tmp_path):
    # a shard written under an earlier task mapping: its footer's label is replaced by PAPER_TASKS
    shard = next(Path(tiny_out).rglob("*.parquet"))
    table = pq.read_table(shard)
    record = json.loads(table.schema.metadata[b"lrid_run"])
    task = record["spec"]["task"]
    record["summary"]["paper_task"] = "stale-label"
    target = tmp_path / shard.relative_to(tiny_out)
    target.parent.mkdir(parents=True)
    pq.write_table(table.replace_schema_metadata({**table.schema.metadata, b"lrid_run": json.dumps(record)}), target)
    runs = collect_runs(tmp_path)
    assert len(runs) == 1 and runs["paper_task"].tolist() == [PAPER_TASKS[task]]


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


# --------------------------------------------------------------------------- slices and devices


def test_shards_partition_the_grid():
    specs = PRESETS["embedded"].specs()
    for n in (1, 3, 7, 576, 600):
        slices = [select_shard(specs, (k, n)) for k in range(n)]
        assert [s.run_id for part in slices for s in part] == [s.run_id for s in specs]  # contiguous, in order
        sizes = [len(part) for part in slices]
        assert max(sizes) - min(sizes) <= 1
    assert parse_shard("2/5") == (2, 5) and parse_shard(" 0 / 1 ") == (0, 1)
    for bad in ("5/5", "1/0", "a/b", "3"):
        with pytest.raises(SweepError, match="shard"):
            parse_shard(bad)


def test_shard_from_slurm_environment():
    assert shard_from_env({}) is None
    assert shard_from_env({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "10"}) == (3, 10)
    # --array=1-10: ids 1..10 are slices 0..9
    assert shard_from_env({"SLURM_ARRAY_TASK_ID": "10", "SLURM_ARRAY_TASK_COUNT": "10",
                           "SLURM_ARRAY_TASK_MIN": "1"}) == (9, 10)
    with pytest.raises(SweepError):
        shard_from_env({"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "10"})


def test_device_for_rank_spreads_workers_over_gpus():
    assert [device_for_rank("cuda", r, 4) for r in range(6)] == ["cuda:0", "cuda:1", "cuda:2", "cuda:3",
                                                                 "cuda:0", "cuda:1"]
    assert device_for_rank("cuda", 7, 1) == "cuda:0"
    assert device_for_rank("cuda:2", 0, 4) == "cuda:2" and device_for_rank("cpu", 3, 0) == "cpu"
    with pytest.raises(SweepError, match="no CUDA"):
        device_for_rank("cuda", 0, 0)


def test_sharded_runs_together_equal_one_run(tmp_path):
    preset = small_preset(rules=("sgdm", "adam", "feedback"))
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    run_sweep(preset, whole, progress=False)
    # slices take whole packs: SGDM and Adam share one, FA has its own
    first = run_sweep(preset, parts, progress=False, shard=(0, 2))
    assert first["selected"] == 2 and first["complete"] == 2 and first["missing"] == 1
    with pytest.raises(SweepError, match=r"1 of 3 networks have no shard yet \(digits-knet-feedback"):
        finalize(parts)
    second = run_sweep(preset, parts, progress=False, shard=(1, 2))
    assert second["selected"] == 1 and second["complete"] == 1 and second["missing"] == 0
    tasks = json.loads((parts / "sweep.json").read_text())["mini"]["tasks"]
    assert set(tasks) == {"0/2", "1/2"}
    result = finalize(parts)
    assert result["mini"]["complete"] == 3 and len(result["mini"]["compacted"]) == 1
    key = ["run_id", "layer_name", "checkpoint"]
    a = read_table(whole).sort_values(key).reset_index(drop=True)
    b = read_table(parts).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a[key + list(OBSERVABLE_NAMES)], b[key + list(OBSERVABLE_NAMES)])
    assert len(json.loads((parts / "runs.json").read_text())) == 3


# --------------------------------------------------------------------------- concurrency


def test_claims_are_exclusive_and_stale_ones_taken_over(tmp_path):
    path = try_claim(tmp_path, "mini", "net-a")
    assert path == claim_path(tmp_path, "mini", "net-a") and path.is_file()
    assert try_claim(tmp_path, "mini", "net-a") is None  # held by a live process (this one)
    assert live_claims(tmp_path) == {("mini", "net-a"): json.loads(path.read_text())}
    # a dead process on this host
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "pid": dead.pid}))
    assert is_stale(path)
    mine = try_claim(tmp_path, "mini", "net-a")
    assert mine is not None and json.loads(mine.read_text())["pid"] == os.getpid()
    # another host: live until its heartbeat is older than stale_after
    mine.write_text(json.dumps({**record, "host": "elsewhere", "pid": 1}))
    assert not is_stale(mine) and try_claim(tmp_path, "mini", "net-a") is None
    old = time.time() - 3600
    os.utime(mine, (old, old))
    assert is_stale(mine) and try_claim(tmp_path, "mini", "net-a") is not None
    release(mine)
    assert not mine.exists() and live_claims(tmp_path) == {}


def test_network_claimed_elsewhere_is_left_alone(tmp_path):
    preset = small_preset()
    sgdm, adam = preset.specs()
    claim = try_claim(tmp_path, "mini", adam.run_id)  # as if another worker were training it
    counts = run_sweep(preset, tmp_path, progress=False)
    assert counts["complete"] == 1 and counts["claimed"] == 1 and counts["missing"] == 1
    assert not shard_path(tmp_path, adam).exists() and claim.is_file()
    with pytest.raises(SweepError, match=adam.run_id):
        finalize(tmp_path)
    release(claim)
    assert run_sweep(preset, tmp_path, progress=False)["complete"] == 1
    assert finalize(tmp_path)["mini"]["complete"] == 2


def test_sweep_json_updates_are_merged_under_a_lock(tmp_path):
    preset = small_preset()
    other = small_preset(name="other")
    errors = []

    def update(i):
        try:
            _update_sweep_json(tmp_path, preset if i % 2 else other, "cpu", 1, {"total": 2}, task=f"{i}/16")
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=update, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    data = json.loads((tmp_path / "sweep.json").read_text())
    assert set(data) == {"mini", "other"}
    assert set(data["mini"]["tasks"]) == {f"{i}/16" for i in range(1, 16, 2)}
    assert set(data["other"]["tasks"]) == {f"{i}/16" for i in range(0, 16, 2)}


# --------------------------------------------------------------------------- integrity and resume


def _flip_bit_in_data_page(path):
    """Flip one bit inside the largest column chunk's data page (not in a header or the footer)."""
    meta = pq.ParquetFile(path).metadata
    chunks = [meta.row_group(g).column(c) for g in range(meta.num_row_groups) for c in range(meta.num_columns)]
    chunk = max(chunks, key=lambda c: c.total_compressed_size)
    offset = chunk.data_page_offset + chunk.total_compressed_size // 2
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))


def test_corrupt_shard_is_detected_and_retrained(tiny_out, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(tiny_out, out)
    specs = TINY.specs()
    victim = shard_path(out, specs[2])
    original = read_table(victim)
    _flip_bit_in_data_page(victim)
    with pytest.raises(OSError, match="(?i)checksum|crc"):
        pq.read_table(victim, page_checksum_verification=True)
    counts = run_sweep("tiny", out, progress=False)
    assert counts["skipped"] == len(specs) - 1 and counts["complete"] == 1
    assert (victim.parent / f".corrupt-{victim.name}").is_file()  # kept aside for inspection
    pd.testing.assert_frame_equal(read_table(victim), original)  # retrained, bit-identical


def test_compacted_file_plus_leftover_shard_is_repaired_by_a_rerun(tiny_out, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(tiny_out, out)
    shard = shard_path(out, TINY.specs()[0])
    kept = shard.read_bytes()
    compact(out)
    shard.write_bytes(kept)  # compaction killed before deleting this shard
    assert not TINY.compact
    counts = run_sweep("tiny", out, progress=False)
    assert counts["skipped"] == len(TINY.specs()) and counts["complete"] == 0
    assert not shard.exists()
    assert len(load_view(out)) == len(load_view(tiny_out))  # no repeated checkpoints


def test_resumed_sweep_is_bit_identical(tmp_path):
    preset = small_preset()
    previous = torch.get_num_threads()
    torch.set_num_threads(2)  # the main process has more threads than the workers
    try:
        whole, resumed = tmp_path / "whole", tmp_path / "resumed"
        run_sweep(preset, whole, workers=2, progress=False)  # both networks in workers
        run_sweep(preset, resumed, workers=2, limit=1, progress=False)  # killed after one network
        run_sweep(preset, resumed, workers=2, progress=False)  # the last one trains in the main process
    finally:
        torch.set_num_threads(previous)
    key = ["run_id", "layer_name", "checkpoint"]
    a = read_table(whole).sort_values(key).reset_index(drop=True)
    b = read_table(resumed).sort_values(key).reset_index(drop=True)
    np.testing.assert_array_equal(a[list(OBSERVABLE_NAMES)].to_numpy(), b[list(OBSERVABLE_NAMES)].to_numpy())
    assert set(collect_runs(resumed)["torch_threads"]) == {1}


def test_killed_sweep_leaves_no_worker_running(tmp_path):
    preset = small_preset(rules=("sgdm", "adam", "feedback", "information"), epochs=6)
    with open(tmp_path / "preset.pkl", "wb") as handle:
        pickle.dump(preset, handle)
    out = tmp_path / "out"
    code = ("import pickle, sys; from lrid_generate.sweep import run_sweep; "
            "run_sweep(pickle.load(open(sys.argv[1], 'rb')), sys.argv[2], workers=2, progress=False)")
    main_process = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "preset.pkl"), str(out)],
                                    cwd=Path(__file__).resolve().parents[1])
    claims = out / ".claims" / "mini"
    deadline = time.time() + 120
    while len(list(claims.glob("*.claim"))) < 2:
        assert time.time() < deadline and main_process.poll() is None, "the workers never started"
        time.sleep(0.1)
    workers = [json.loads(p.read_text())["pid"] for p in claims.glob("*.claim")]
    os.kill(main_process.pid, signal.SIGKILL)
    main_process.wait()
    time.sleep(1.5)  # the workers notice within half a second
    shards = sorted(out.rglob("*.parquet"))
    alive = [pid for pid in workers if pid_alive(pid)]
    assert not alive, f"workers {alive} still run after the main process was killed"
    time.sleep(10)  # longer than a network takes
    assert sorted(out.rglob("*.parquet")) == shards
    assert all(is_stale(p) for p in claims.glob("*.claim"))  # taken over by the next run


# --------------------------------------------------------------------------- unusable output folders


def _can_mount_tmpfs():
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    probe = Path("/tmp") / f"lrid-mount-probe-{os.getpid()}"
    probe.mkdir(exist_ok=True)
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
                            capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", str(probe)], check=True)
        return ok
    finally:
        probe.rmdir()


@pytest.fixture
def small_filesystem(tmp_path):
    """A 256 kB tmpfs mounted at tmp_path/fs (root only; skipped elsewhere), with its mount options."""
    if not _can_mount_tmpfs():
        pytest.skip("needs root and mount to make a small file system")
    mount = tmp_path / "fs"
    mount.mkdir()
    mounted = []

    def make(options):
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size=256k,{options}", "tmpfs", str(mount)], check=True)
        mounted.append(mount)
        return mount

    yield make
    for path in mounted:
        subprocess.run(["umount", str(path)], check=False)


def _assert_one_line_error(capsys, code, *words):
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err


def test_read_only_out_is_a_one_line_error(tmp_path, capsys, small_filesystem):
    out = small_filesystem("ro")
    code = main(["sweep", "--preset", "tiny", "--out", str(out), "--quiet"])
    _assert_one_line_error(capsys, code, "read-only file system", str(out))


def test_read_only_out_without_root(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders (see the tmpfs test)")
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        code = main(["sweep", "--preset", "tiny", "--out", str(out), "--quiet"])
    finally:
        out.chmod(0o755)
    _assert_one_line_error(capsys, code, "permission denied", str(out))


def test_full_out_is_a_one_line_error(tmp_path, capsys, small_filesystem):
    out = small_filesystem("rw")
    with pytest.raises(OSError) as info:
        with open(out / "filler", "wb") as handle:
            while True:
                handle.write(b"x" * 4096)
                handle.flush()
    assert info.value.errno == errno.ENOSPC
    code = main(["sweep", "--preset", "tiny", "--out", str(out), "--quiet"])
    _assert_one_line_error(capsys, code, str(out))
    assert not list(out.rglob("*.parquet"))


def test_nearly_full_out_is_refused(tmp_path, monkeypatch):
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=1 << 20))
    with pytest.raises(SweepError, match="only 1.0 MiB free"):
        check_writable(tmp_path / "out")


def test_round_mantissa_bounds_the_relative_error():
    from lrid_generate.store import round_mantissa

    rng = np.random.default_rng(0)
    x = (rng.standard_normal(20000) * 10.0 ** rng.uniform(-20, 20, 20000)).astype(np.float32)
    for bits in (1, 7, 13, 22):
        r = round_mantissa(x, bits)
        assert r.dtype == np.float32 and r.shape == x.shape
        rel = np.abs(r.astype(np.float64) - x) / np.abs(x.astype(np.float64))
        assert rel.max() <= 2.0 ** -(bits + 1)
        low = r.view(np.uint32) & np.uint32((1 << (23 - bits)) - 1)
        assert not low.any()  # the dropped mantissa bits are zero
        # nearest: no float32 with that many bits lies closer (the neighbours one step away)
        step = np.float64(2.0) ** (np.floor(np.log2(np.abs(r.astype(np.float64)))) - bits)
        assert (np.abs(r - x.astype(np.float64)) <= step / 2 + 1e-300).all()
    np.testing.assert_array_equal(round_mantissa(x, 23), x)
    special = np.float32([0.0, -0.0, np.inf, -np.inf, np.nan, np.finfo(np.float32).max])
    np.testing.assert_array_equal(round_mantissa(special, 3), special)


def test_compaction_can_round_the_noisy_rows(tiny_out, tmp_path):
    from lrid_generate.store import round_mantissa

    out = tmp_path / "rounded"
    shutil.copytree(tiny_out, out)
    keys = ["run_id", "layer_name", "unit_fraction", "noise_std", "obs_seed", "checkpoint"]
    before = read_table(tiny_out).sort_values(keys).reset_index(drop=True)
    assert main(["compact", "--out", str(out), "--noisy-mantissa-bits", "8"]) == 0
    after = read_table(out).sort_values(keys).reset_index(drop=True)
    noisy = ~((after["unit_fraction"] == 1.0) & (after["noise_std"] == 0.0))
    assert noisy.any() and (~noisy).any()
    pd.testing.assert_frame_equal(after[~noisy], before[~noisy])  # full-access rows exact
    for name in OBSERVABLE_NAMES:
        expected = round_mantissa(before.loc[noisy, name].to_numpy(dtype=np.float32), 8)
        np.testing.assert_array_equal(after.loc[noisy, name].to_numpy(dtype=np.float32), expected)
    assert not after.loc[noisy, OBSERVABLE_NAMES].equals(before.loc[noisy, OBSERVABLE_NAMES])
    assert pq.read_schema(next(out.rglob(COMPACTED_NAME))).metadata[b"lrid_noisy_mantissa_bits"] == b"8"
    assert PRESETS["embedded"].noisy_mantissa_bits == 12 and PRESETS["tiny"].noisy_mantissa_bits is None
    with pytest.raises(SweepError, match="noisy_mantissa_bits"):
        compact(out, noisy_mantissa_bits=0)
    assert main(["compact", "--out", str(out), "--noisy-mantissa-bits", "30"]) == 2


def test_compaction_level_changes_only_the_size(tiny_out, tmp_path):
    keys = ["run_id", "layer_name", "unit_fraction", "noise_std", "obs_seed", "checkpoint"]
    sizes, tables = {}, {}
    for level in ("1", "19"):
        out = tmp_path / f"level{level}"
        shutil.copytree(tiny_out, out)
        assert main(["compact", "--out", str(out), "--compression-level", level]) == 0
        files = sorted(out.rglob(COMPACTED_NAME))
        assert pq.read_schema(files[0]).metadata[b"lrid_compression_level"] == level.encode()
        sizes[level] = sum(f.stat().st_size for f in files)
        tables[level] = read_table(out).sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(tables["1"], tables["19"])  # lossless
    assert sizes["19"] < sizes["1"]
    assert PRESETS["embedded"].compression_level is None
    with pytest.raises(SweepError, match="compression_level"):
        compact(tmp_path / "level1", compression_level=23)
    assert main(["compact", "--out", str(tmp_path / "level1"), "--compression-level", "0"]) == 2
