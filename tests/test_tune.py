"""Tests for lrid_generate.tune: learning-rate pilots, choice, resumable record, file the preset reads."""

import dataclasses
import json
import math

import pytest

from lrid_generate.__main__ import main
from lrid_generate.presets import PRESETS, SweepError, tuned_learning_rates
from lrid_generate.train import train_network
from lrid_generate.tune import choose_rate, pilot_specs, tune

# two rules, two rates, one epoch: four short pilots on the tiny preset
TINY = dataclasses.replace(PRESETS["tiny"], rules=("sgdm", "adam"), lr_grid=(0.1, 3.0), tune_epochs=1)


def test_choose_rate_picks_best_smaller_on_ties_and_skips_diverged():
    assert choose_rate({0.1: 0.5, 0.3: 0.7, 1.0: None}) == (0.3, False)
    assert choose_rate({0.1: 0.7, 0.3: 0.7, 1.0: 0.2}) == (0.1, True)
    assert choose_rate({0.1: 0.2, 0.3: 0.4, 1.0: 0.6}) == (1.0, True)
    assert choose_rate({0.1: None, 0.3: None}) == (None, False)


def test_pilot_specs_hold_out_training_data():
    groups = pilot_specs(TINY)
    assert sorted(groups) == ["digits/knet/adam", "digits/knet/sgdm"]
    for key, items in groups.items():
        rule = key.split("/")[-1]
        default = TINY.default_learning_rate("digits", "knet", rule)
        assert [m for m, _ in items] == [0.1, 3.0]
        for m, spec in items:
            assert spec.lr == pytest.approx(default * m) and spec.batch_size == TINY.base_batch
            assert dict(spec.task_options)["validation"] == "train_split" and spec.epochs == 1
    with pytest.raises(SweepError, match="nothing to tune"):
        pilot_specs(TINY, tasks=["signal1d"])


def test_tune_writes_rates_the_preset_reads_and_resumes(tmp_path):
    lr_file = tmp_path / "rates.json"
    # packs of two pilots: a limit of 1 trains one whole pack
    partial = tune(TINY, tmp_path / "pilots", lr_file=lr_file, limit=1, progress=False, pack=2)
    assert partial["trained"] == 2 and partial["missing"] == 2 and not lr_file.exists()
    result = tune(TINY, tmp_path / "pilots", lr_file=lr_file, progress=False, pack=2)
    assert result["trained"] == 2 and result["missing"] == 0
    # an uninterrupted run gives the same scores (seeded training, the same pack-mates)
    fresh = tune(TINY, tmp_path / "fresh", lr_file=tmp_path / "fresh.json", progress=False, pack=2)
    assert fresh["pilots"] == result["pilots"] and fresh["trained"] == 4
    # pilots are packed by default; one at a time gives the same scores
    alone = tune(TINY, tmp_path / "alone", lr_file=tmp_path / "alone.json", progress=False, pack=1)
    for key, scores in alone["pilots"].items():
        assert scores == pytest.approx(result["pilots"][key], abs=1e-6)
    again = tune(TINY, tmp_path / "pilots", lr_file=lr_file, progress=False)
    assert again["trained"] == 0 and again["chosen"] == result["chosen"]

    # the choice is the argmax of the recorded pilot accuracies
    record = json.loads((tmp_path / "pilots" / "pilots.json").read_text())["pilots"]
    for key in ("digits/knet/sgdm", "digits/knet/adam"):
        scores = {p["spec"]["lr"]: p["val_accuracy"] for p in record.values()
                  if "/".join((p["spec"]["task"], p["spec"]["architecture"], p["spec"]["learning_rule"])) == key}
        best = max((a, -lr) for lr, a in scores.items() if a is not None)
        assert result["chosen"][key] == pytest.approx(-best[1])

    # a pilot's score is the accuracy of that network on the held-out training examples
    one = pilot_specs(TINY)["digits/knet/sgdm"][0][1]
    _, summary = train_network(one)
    assert result["pilots"]["digits/knet/sgdm"][one.lr] == pytest.approx(summary["val_accuracy"])

    assert tuned_learning_rates(lr_file) == pytest.approx(result["chosen"])
    tuned = dataclasses.replace(TINY, learning_rate_file=str(lr_file))
    for spec in tuned.specs():
        chosen = result["chosen"][f"{spec.task}/{spec.architecture}/{spec.learning_rule}"]
        assert spec.lr == pytest.approx(chosen * math.sqrt(spec.batch_size / tuned.base_batch))


def test_tune_refuses_pilots_with_other_settings_and_bad_files(tmp_path):
    tune(TINY, tmp_path, lr_file=tmp_path / "r.json", rules=["sgdm"], limit=1, progress=False)
    with pytest.raises(SweepError, match="other settings"):
        tune(dataclasses.replace(TINY, n_val=16), tmp_path, lr_file=tmp_path / "r.json", rules=["sgdm"],
             progress=False)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"learning_rates": {"digits/knet": 0.1}}))
    with pytest.raises(SweepError, match="task/architecture/rule"):
        tuned_learning_rates(bad)
    bad.write_text(json.dumps({"learning_rates": {"digits/knet/sgdm": -1}}))
    with pytest.raises(SweepError, match="positive"):
        dataclasses.replace(TINY, learning_rate_file=str(bad)).specs()
    assert tuned_learning_rates(tmp_path / "missing.json") == {}


def test_tune_cli(tmp_path, capsys):
    code = main(["tune", "--preset", "tiny", "--out", str(tmp_path / "p"), "--lr-file", str(tmp_path / "r.json"),
                 "--rules", "sgdm", "--epochs", "1", "--limit", "1", "--pack", "1", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "missing: run again" in out
    assert main(["tune", "--preset", "tiny", "--out", str(tmp_path / "p"), "--lr-file", str(tmp_path / "r.json"),
                 "--tasks", "cifar10", "--quiet"]) == 2


def test_tune_family_trains_representatives_and_shares_their_rates(tmp_path):
    family = dataclasses.replace(TINY, architectures=("knet", "knetlrn"), rules=("sgdm",),
                                 tune_family={"knetlrn": "knet"})
    assert list(pilot_specs(family)) == ["digits/knet/sgdm"]
    lr_file = tmp_path / "rates.json"
    result = tune(family, tmp_path / "pilots", lr_file=lr_file, progress=False)
    assert result["trained"] == len(family.lr_grid)
    assert result["inherited"] == {"digits/knetlrn/sgdm": "digits/knet/sgdm"}
    assert result["chosen"]["digits/knetlrn/sgdm"] == result["chosen"]["digits/knet/sgdm"]
    data = json.loads(lr_file.read_text())
    assert data["inherited_from"] == {"digits/knetlrn/sgdm": "digits/knet/sgdm"}
    tuned = dataclasses.replace(family, learning_rate_file=str(lr_file))
    rates = {s.architecture: s.lr for s in tuned.specs()}
    assert rates["knetlrn"] == rates["knet"] == pytest.approx(
        result["chosen"]["digits/knet/sgdm"] * math.sqrt(64 / tuned.base_batch))
    # leaving the family: the architecture is tuned itself and no longer listed as inheriting
    alone = dataclasses.replace(family, tune_family={})
    own = tune(alone, tmp_path / "pilots", lr_file=lr_file, progress=False, architectures=["knetlrn"])
    assert own["trained"] == len(family.lr_grid) and own["inherited"] == {}
    data = json.loads(lr_file.read_text())
    assert data["inherited_from"] == {}
    assert data["learning_rates"]["digits/knetlrn/sgdm"] == own["chosen"]["digits/knetlrn/sgdm"]


def test_extending_the_grid_lets_every_tried_rate_compete(tmp_path):
    base = dataclasses.replace(TINY, rules=("sgdm",), lr_grid=(0.1,))
    first = tune(base, tmp_path / "p", lr_file=tmp_path / "r.json", progress=False)
    assert list(first["pilots"]["digits/knet/sgdm"]) == [pytest.approx(first["chosen"]["digits/knet/sgdm"])]
    extended = tune(base, tmp_path / "p", lr_file=tmp_path / "r.json", progress=False, lr_grid=(3.0,))
    assert extended["trained"] == 1
    scores = extended["pilots"]["digits/knet/sgdm"]
    assert len(scores) == 2  # both rates compete
    best = max((a, -lr) for lr, a in scores.items() if a is not None)
    assert extended["chosen"]["digits/knet/sgdm"] == pytest.approx(-best[1])
    # the default grid again trains nothing and keeps both rates in the running
    again = tune(base, tmp_path / "p", lr_file=tmp_path / "r.json", progress=False)
    assert again["trained"] == 0 and again["pilots"] == extended["pilots"]
