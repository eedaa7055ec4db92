"""Packed training: K networks trained together give each network's results alone."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch

from lrid_analysis.dataset import read_table
from lrid_analysis.observables import OBSERVABLE_NAMES
from lrid_generate.packed import (
    PackedOptimizer,
    default_pack_size,
    make_packs,
    pack_key,
    train_pack,
)
from lrid_generate.presets import PRESETS, Preset
from lrid_generate.store import shard_path
from lrid_generate.sweep import run_sweep
from lrid_generate.train import checkpoint_steps, train_network

TINY = PRESETS["tiny"]
OBS = list(OBSERVABLE_NAMES)
SEEDS = ((None, None), (0, 0), (0, None))  # (model seed, dataset seed) of the pack's networks


def _specs(architecture, rules, width, n=2, **changes):
    """Short runs on the tiny preset's 8x8 digits, seeds varying across the pack."""
    base = dict(architecture=architecture, width=width, epochs=1, n_checkpoints=3)
    base.update(changes)
    template = TINY.specs()[0]
    out = []
    for i in range(n):
        rule = rules[i % len(rules)]
        model_seed, dataset_seed = SEEDS[i % len(SEEDS)]
        like = next(s for s in TINY.specs() if s.learning_rule == rule)  # its lr and noise conditions
        out.append(dataclasses.replace(template, learning_rule=rule, lr=like.lr, conditions=like.conditions,
                                       model_seed=model_seed, dataset_seed=dataset_seed, **base))
    return out


def assert_same_observables(packed, alone, tol=1e-5):
    """Every observable within 1e-5 of its value alone, relative to that observable's scale in the run.

    Statistics such as the skew (3 (mean - median) / std) cancel to values
    near zero, where a purely relative tolerance would be meaningless.
    """
    assert packed.shape == alone.shape
    keys = ["layer_name", "checkpoint", "unit_fraction", "noise_std", "obs_seed"]
    pd.testing.assert_frame_equal(packed[keys].reset_index(drop=True), alone[keys].reset_index(drop=True))
    a, b = packed[OBS].to_numpy(np.float64), alone[OBS].to_numpy(np.float64)
    scale = np.nanmax(np.abs(b), axis=0)
    close = np.isclose(a, b, rtol=tol, atol=0.0) | (np.abs(a - b) <= tol * scale) | (np.isnan(a) & np.isnan(b))
    assert close.all(), f"{(~close).sum()} values differ, e.g. {packed.loc[~close.all(1), keys].head(3)}"
    first = (packed["checkpoint"] == 0).to_numpy()
    np.testing.assert_array_equal(a[first], b[first])  # before training: bit-identical


def _check_pack(specs, adam_first_step_only=False, tol=1e-5):
    results = train_pack(specs)
    for spec, (rows, summary) in zip(specs, results):
        rows_alone, summary_alone = train_network(spec)
        loose = adam_first_step_only and spec.learning_rule == "adam"
        if loose:
            # Adam divides each gradient by its own size, so gradients at rounding level (a conv bias before
            # batch norm, whose exact gradient is 0) become steps of the size of the learning rate: after
            # three steps one ResNet trained with 1 vs 2 threads differs by 9e-2. Compared after one step.
            first = (rows_alone["checkpoint"] <= 1).to_numpy()
            assert_same_observables(rows[first], rows_alone[first], tol=1e-4)
        else:
            assert_same_observables(rows, rows_alone, tol=tol)
            for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
                assert summary[key] == pytest.approx(summary_alone[key], rel=1e-5, abs=1e-6), key
                # the per-checkpoint learning curve too (null train metrics at checkpoint 0 on both sides)
                np.testing.assert_allclose(rows[key].to_numpy(np.float64), rows_alone[key].to_numpy(np.float64),
                                           rtol=1e-5, atol=1e-6)
        for key in ("status", "checkpoints_recorded", "steps", "model_seed_used", "dataset_seed_used"):
            assert summary[key] == summary_alone[key], key
        assert summary["pack_size"] == len(specs)
        meta = ["source", "run_id", "task", "architecture", "learning_rule", "batch_size", "model_seed",
                "dataset_seed"]
        pd.testing.assert_frame_equal(rows[meta], rows_alone[meta])
    return results


# --------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("rules", [("sgdm", "adam"), ("feedback",), ("information",)])
def test_knet_pack_equals_networks_alone(rules):
    # FA / IA networks carry the tiny preset's unit-noise grid (6 conditions)
    _check_pack(_specs("knet", rules, 0.25, n=3 if len(rules) == 1 else 2))


def test_knet_with_lrn_pack_equals_networks_alone():
    # local response normalisation across channels: per network under vmap
    _check_pack(_specs("knetlrn", ("information",), 0.25))


# AlexNet and ResNet: three steps of batch 512, recorded after each. Over longer runs these small networks
# amplify rounding: after ~27 steps even one network trained with 1 vs 2 threads (another order of sums)
# differs by 2e-4 (AlexNet, Adam) to several percent (ResNet), and packing's grouped kernels reorder sums too.
SHORT = dict(batch_size=512, n_checkpoints=4)


@pytest.mark.parametrize("rules", [("sgdm", "adam"), ("feedback",), ("information",)])
def test_alexnet_pack_equals_networks_alone(rules):
    # dropout: each network's masks come from its own seeded stream, as alone. 3e-5: rounding-level
    # differences of the grouped kernels reach 1.3e-5 of the scale in a skew (3 (mean - median) / std, a
    # difference of close values) of half of fc6's units after three FA steps (the other values: < 1e-5)
    results = _check_pack(_specs("alexnet", rules, 0.125, **SHORT), adam_first_step_only=True, tol=3e-5)
    assert results[0][1]["steps"] == 3


@pytest.mark.parametrize("rules", [("sgdm", "adam"), ("feedback",), ("information",)])
def test_resnet_pack_equals_networks_alone(rules):
    # batch norm: per-network batch statistics and running averages (stacked buffers)
    _check_pack(_specs("resnet18", rules, 0.125, **SHORT), adam_first_step_only=True)


def test_simclr_pack_equals_networks_alone():
    # views drawn from each network's own generator; batch norm in the projection head. (Adam is left out:
    # one SimCLR KNet trained with Adam differs by 3e-4 after one step between 1 and 2 threads, see above.)
    # 5e-5: on some CPUs the rounding-level differences of the packed (grouped) and single convolutions grow
    # through three SimCLR steps (normalised similarities, batch-norm head) to 1.7e-5 of a statistic's scale
    # (actraw_median at checkpoint 3; 2.4e-6 and 2.8e-6 for the two other networks of the pack)
    _check_pack(_specs("knet", ("sgdm",), 0.25, n=3, task="digits_simclr", **SHORT), tol=5e-5)


def test_diverged_network_does_not_stop_its_pack_mates():
    good, bad = _specs("knet", ("sgdm",), 0.25, n=2, n_checkpoints=4)
    bad = dataclasses.replace(bad, lr=1e6)
    (rows_good, summary_good), (rows_bad, summary_bad) = train_pack([good, bad])
    alone_bad_rows, alone_bad = train_network(bad)
    assert summary_bad["status"] == alone_bad["status"] == "diverged"
    assert summary_bad["steps"] == alone_bad["steps"] and summary_bad["checkpoints_recorded"] < 4
    assert_same_observables(rows_bad, alone_bad_rows)
    assert summary_good["status"] == "complete" and summary_good["checkpoints_recorded"] == 4
    assert_same_observables(rows_good, train_network(good)[0])


def test_pack_refuses_networks_that_cannot_share_it():
    a, b = _specs("knet", ("sgdm", "feedback"), 0.25)
    with pytest.raises(ValueError, match="pack_key"):
        train_pack([a, b])


# --------------------------------------------------------------------------- optimizer


def test_packed_optimizer_matches_torch_optimizers():
    gen = torch.Generator().manual_seed(0)
    k = 4
    kinds, lrs, wds = ["sgdm", "adam", "sgdm", "adam"], [0.1, 0.01, 0.05, 0.01], [1e-2, 1e-2, 0.0, 0.0]
    shapes = [(3, 5), (5,)]
    stacked = [torch.randn((k, *s), generator=gen) for s in shapes]
    alone = [[t[i].clone().requires_grad_() for t in stacked] for i in range(k)]
    optimizers = []
    for i in range(k):
        groups = [{"params": [alone[i][0]], "weight_decay": wds[i]}, {"params": [alone[i][1]], "weight_decay": 0.0}]
        optimizers.append(torch.optim.SGD(groups, lr=lrs[i], momentum=0.9, nesterov=True) if kinds[i] == "sgdm"
                          else torch.optim.Adam(groups, lr=lrs[i]))
    packed = PackedOptimizer(stacked, [True, False], kinds, lrs, wds)
    for _ in range(5):
        grads = [torch.randn((k, *s), generator=gen) for s in shapes]
        packed.step(grads)
        for i in range(k):
            for p, g in zip(alone[i], grads):
                p.grad = g[i].clone()
            optimizers[i].step()
    for i in range(k):
        for t, p in zip(stacked, alone[i]):
            torch.testing.assert_close(t[i], p.detach(), rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------- grouping


def test_make_packs_groups_by_key_and_size():
    specs = PRESETS["embedded"].specs()[:48]  # digits x knet x 3 batch sizes x 16
    packs = make_packs(specs)
    assert sorted(s.run_id for p in packs for s in p) == sorted(s.run_id for s in specs)
    for pack in packs:
        assert len({pack_key(s) for s in pack}) == 1
    # per batch size: sgdm + adam share plain layers (8 networks), FA (4) and IA (4) their own
    assert sorted(len(p) for p in packs) == [4] * 6 + [8] * 3
    assert {s.learning_rule for s in packs[0]} == {"sgdm", "adam"}
    assert all(len(p) == 1 for p in make_packs(specs, pack=1))
    assert max(len(p) for p in make_packs(specs, pack=3)) == 3
    with pytest.raises(ValueError):
        make_packs(specs, pack=0)


def test_default_pack_size_follows_model_size():
    small = TINY.specs()[0]
    assert default_pack_size(small) == 16
    big = dataclasses.replace(small, architecture="resnet18", width=1.0, task="cifar10", task_options=())
    assert default_pack_size(big) == 1


# --------------------------------------------------------------------------- sweeps


def _mini(**changes):
    base = dict(name="mini", description="test", rules=("sgdm", "adam"), tasks=("digits",), architectures=("knet",),
                batch_sizes=(128,), model_seeds=(None, 0), dataset_seeds=(None,), epochs=1,
                learning_rates={"sgdm": 0.05, "adam": 0.01, "feedback": 0.1, "information": 0.02},
                width=0.25, n_checkpoints=3, n_val=16, init_scaling="unit_variance")
    base.update(changes)
    return Preset(**base)


def test_packed_sweep_equals_one_at_a_time_and_resumes_per_network(tmp_path):
    preset = _mini()
    specs = preset.specs()
    packed, single = tmp_path / "packed", tmp_path / "single"
    counts = run_sweep(preset, packed, progress=False)
    assert counts["complete"] == len(specs) and counts["missing"] == 0
    assert sum(shard_path(packed, s).is_file() for s in specs) == len(specs)  # one shard per network
    lost = shard_path(packed, specs[1])
    before = read_table(lost)
    lost.unlink()  # as if the sweep had been killed before writing it
    again = run_sweep(preset, packed, progress=False)
    assert again["skipped"] == len(specs) - 1 and again["complete"] == 1 and again["missing"] == 0
    # the network trains again with the same pack-mates: the same bits
    pd.testing.assert_frame_equal(read_table(lost), before, check_exact=True)
    run_sweep(preset, single, pack=1, progress=False)
    order = ["run_id", "layer_name", "checkpoint"]
    a = read_table(packed).sort_values(order).reset_index(drop=True)
    b = read_table(single).sort_values(order).reset_index(drop=True)
    for run in a["run_id"].unique():
        assert_same_observables(a[a["run_id"] == run], b[b["run_id"] == run])
    runs = {r["run_id"]: r for r in json.loads((packed / "runs.json").read_text())}
    assert sorted(r.get("pack_size") for r in runs.values()) == [len(specs)] * len(specs)
    alone = {r["run_id"]: r for r in json.loads((single / "runs.json").read_text())}
    assert all("pack_size" not in r for r in alone.values())


def test_sweep_cli_takes_pack(tmp_path):
    from lrid_generate.__main__ import main

    out = tmp_path / "cli"
    assert main(["sweep", "--preset", "tiny", "--out", str(out), "--quiet", "--pack", "2", "--limit", "2"]) == 0
    runs = json.loads((out / "runs.json").read_text())
    assert [r["pack_size"] for r in runs] == [2, 2]


def test_learning_curve_is_recorded_at_every_checkpoint():
    """Train metrics are the means since the previous checkpoint; the last checkpoint's val is the summary's."""
    spec = _specs("knet", ("sgdm",), 8, n=1, epochs=2, n_checkpoints=5)[0]
    rows, summary = train_network(spec)
    curve = rows.groupby("checkpoint")[["train_accuracy", "val_accuracy", "train_loss", "val_loss"]]
    assert (curve.nunique(dropna=False) == 1).all().all()  # one value per checkpoint, shared by all layers
    per_ckpt = curve.first()
    assert per_ckpt.loc[0, ["train_accuracy", "train_loss"]].isna().all()
    assert per_ckpt[["val_accuracy", "val_loss"]].notna().all().all()
    assert per_ckpt.loc[1:].notna().all().all()
    assert ((per_ckpt[["train_accuracy", "val_accuracy"]].dropna() >= 0)
            & (per_ckpt[["train_accuracy", "val_accuracy"]].dropna() <= 1)).all().all()
    last = per_ckpt.iloc[-1]
    assert last["val_loss"] == pytest.approx(summary["val_loss"]) and last["val_accuracy"] == summary["val_accuracy"]
    # the summary's train loss is the mean over the last epoch, which checkpoints 3 and 4 of 5 cover exactly
    bounds = checkpoint_steps(int(summary["steps_total"]), spec.n_checkpoints)
    assert bounds[2] * 2 == summary["steps_total"]
    mean = np.average(per_ckpt.loc[[3, 4], "train_loss"], weights=np.diff(bounds)[2:])
    assert mean == pytest.approx(summary["train_loss"], rel=1e-9)
    accuracy = np.average(per_ckpt.loc[[3, 4], "train_accuracy"], weights=np.diff(bounds)[2:])
    assert accuracy == pytest.approx(summary["train_accuracy"], rel=1e-9)
