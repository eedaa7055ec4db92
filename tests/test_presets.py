"""Tests for lrid_generate.presets: the v2 `embedded` grid, options, tuned-rate files."""

import dataclasses
import json

import pytest

from lrid_generate.presets import PRESETS, RunSpec, SweepError
from lrid_generate.recorder import FULL_ACCESS

V2 = PRESETS["embedded"]


def test_v2_grid_is_the_papers_design_in_miniature():
    specs = V2.specs()
    assert len(specs) == 1056 == len({s.run_id for s in specs})
    pairs = V2.pairs()
    assert len(pairs) == 22
    deep = {"resnet18", "resnet18v2", "resnet34", "resnet34v2", "alexnet", "alexnetlrn"}
    for task in ("digits", "digits_simclr", "signal1d"):
        assert {a for t, a in pairs if t == task} == deep
    assert {a for t, a in pairs if t == "fashion_mnist"} == {"knet", "knetlrn", "knetc4", "knetc4lrn"}
    for (task, arch) in pairs:
        mine = [s for s in specs if (s.task, s.architecture) == (task, arch)]
        assert len(mine) == 4 * 12 and {s.learning_rule for s in mine} == set(V2.rules)
        assert {(s.batch_size, s.model_seed, s.dataset_seed) for s in mine} == {
            (b, m, d) for b in (32, 64, 128) for m in (None, 0) for d in (None, 0)}
    assert all(s.n_checkpoints == 21 and dict(s.task_options)["n_eval"] >= 500 for s in specs)
    assert {s.rule_options for s in specs if s.learning_rule == "information"} == {(("spatial_mean", True),)}
    assert {s.rule_options for s in specs if s.learning_rule != "information"} == {()}
    simclr_alexnet = next(s for s in specs if s.task == "digits_simclr" and s.architecture == "alexnet")
    assert dict(simclr_alexnet.model_options) == {"lrn_scale": 64.0, "bn_momentum": 0.1, "dropout": 0.0}
    assert dict(specs[0].model_options) == {"lrn_scale": 64.0, "bn_momentum": 0.1}
    assert {s.init_scaling for s in specs if s.architecture.startswith("resnet")} == {"unit_variance_feedback"}
    assert {s.init_scaling for s in specs if not s.architecture.startswith("resnet")} == {"unit_variance"}


def test_v2_noise_grid_is_relative_to_the_initial_scale_and_covers_fig5():
    specs = V2.specs()
    noisy = [s for s in specs if len(s.conditions) > 1]
    assert len(noisy) == 2 * 2 * 12  # FA/IA x digits/digits SimCLR x 12 settings, ResNet-18
    assert {(s.learning_rule, s.task, s.architecture) for s in noisy} == {
        (r, t, "resnet18") for r in ("feedback", "information") for t in ("digits", "digits_simclr")}
    conditions = noisy[0].conditions
    assert conditions[0] == FULL_ACCESS
    others = conditions[1:]
    assert len({c.unit_fraction for c in conditions}) >= 5 and len({c.noise_std for c in conditions}) >= 5
    assert {c.obs_seed for c in others} == {0} and 0.0 in {c.noise_std for c in others}
    assert all(c.relative == ("initial" if c.noise_std > 0 else False) for c in others)
    assert len(conditions) == 5 * 5  # full access (1, 0) is the first
    restored = RunSpec.from_dict(json.loads(json.dumps(noisy[0].to_dict())))
    assert restored == noisy[0]


def test_empty_options_keep_old_spec_dicts():
    spec = PRESETS["embedded_v1"].specs()[0]
    data = spec.to_dict()
    assert "rule_options" not in data and "model_options" not in data
    assert all(len(c) == 3 for c in data["conditions"])
    assert RunSpec.from_dict(data) == spec


def test_learning_rate_file_overrides_defaults(tmp_path):
    path = tmp_path / "rates.json"
    path.write_text(json.dumps({"learning_rates": {"digits/resnet18/sgdm": 0.4}}))
    tuned = dataclasses.replace(V2, learning_rate_file=str(path))
    assert tuned.learning_rate("digits", "resnet18", "sgdm", 32) == pytest.approx(0.4 * 32 / 128)
    # entries not in the file keep the default
    assert tuned.learning_rate("digits", "resnet18", "adam", 128) == pytest.approx(V2.learning_rates["adam"])
    path.write_text("{not json")
    with pytest.raises(SweepError, match="not a learning-rate file"):
        tuned.learning_rate("digits", "resnet18", "sgdm", 32)
