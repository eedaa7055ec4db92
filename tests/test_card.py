"""The data card of a generated dataset (lrid_generate.card)."""

import json

import numpy as np
import pytest

from lrid_analysis import dataset
from lrid_generate.card import write_card
from lrid_generate.store import collect_runs


@pytest.fixture(scope="module")
def tiny_out(tiny_sweep, tmp_path_factory):
    """A copy of the session's tiny sweep (the card writes into its folder)."""
    import shutil

    out = tmp_path_factory.mktemp("tiny") / "out"
    shutil.copytree(tiny_sweep, out)
    return out


def test_card_counts_and_accuracies_match_the_data(tiny_out):
    card = write_card(tiny_out, command="python -m lrid_generate sweep --preset tiny", wall_seconds=12.0,
                      n_splits=2, n_estimators=20)
    runs = collect_runs(tiny_out)
    table = dataset.read_table(tiny_out)
    assert card["counts"]["networks"] == len(runs) == 4
    assert card["counts"]["rows"] == len(table)
    assert card["counts"]["cpu_seconds_total"] == pytest.approx(runs["cpu_seconds"].sum())
    assert card["counts"]["train_seconds_total"] == pytest.approx(runs["seconds"].sum())
    assert f"{runs['cpu_seconds'].sum() / 60:.1f} min of CPU time" in (tiny_out / "CARD.md").read_text()
    trajectories = table[["run_id", "layer_name", "unit_fraction", "noise_std", "obs_seed"]].drop_duplicates()
    assert card["counts"]["trajectories"] == len(trajectories)
    by_rule = {row["learning_rule"]: row for row in card["accuracy"]}
    assert sorted(by_rule) == sorted(runs["learning_rule"])
    for rule, row in by_rule.items():
        expected = runs.loc[runs["learning_rule"] == rule, "train_accuracy"].mean()
        assert row["train_accuracy_mean"] == pytest.approx(expected)
    check = card["forest_check"]
    assert check["chance"] == pytest.approx(0.25)
    assert 0.0 <= check["test_accuracy_mean"] <= 1.0
    assert np.asarray(check["confusion"]).shape == (4, 4)


def test_card_files_are_written(tiny_out):
    write_card(tiny_out, command="CMD-SENTINEL", n_splits=2, n_estimators=20)
    text = (tiny_out / "CARD.md").read_text()
    assert "CMD-SENTINEL" in text
    assert "random forest" in text.lower()
    saved = json.loads((tiny_out / "card.json").read_text())
    assert saved["command"] == "CMD-SENTINEL"
    assert not list(tiny_out.glob(".*.tmp"))


def test_card_of_an_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no generated networks"):
        write_card(tmp_path)


# --------------------------------------------------------------------------- gate, baseline, corners

import pandas as pd  # noqa: E402

from lrid_generate.__main__ import main  # noqa: E402
from lrid_generate.card import curve_baseline, format_gate, learning_curve_control, training_gate  # noqa: E402


def _runs(values):
    rows = []
    for (task, arch, rule), accs in values.items():
        for i, acc in enumerate(accs):
            rows.append({"task": task, "architecture": arch, "learning_rule": rule,
                         "status": "diverged" if acc is None else "complete", "val_accuracy": acc,
                         "paper_task": "simclr" if task.endswith("_simclr") else "imagenet",
                         "task_options": json.dumps({"n_eval": 50}), "n_val": 10, "run_id": f"{task}{arch}{rule}{i}"})
    return pd.DataFrame(rows)


def test_training_gate_targets_and_exceptions():
    runs = _runs({
        ("digits", "resnet18", "sgdm"): [0.9, 0.96, 0.8],             # median 0.9
        ("digits", "resnet18", "adam"): [0.95, 0.94, 0.93],
        ("digits", "resnet18", "information"): [0.77, 0.76, 0.5],     # median 0.76 < 0.85 * 0.9 = 0.765
        ("digits", "resnet18", "feedback"): [0.46, None, 0.9],        # diverged counts 0: median 0.46 >= 0.45
        ("digits_simclr", "alexnet", "sgdm"): [0.3, 0.2],
        ("digits_simclr", "alexnet", "feedback"): [0.05, 0.08],       # median 0.065 < 10 / 99
    })
    gate = training_gate(runs)
    cells = {c["key"]: c for c in gate["cells"]}
    assert cells["digits/resnet18/information"]["median"] == pytest.approx(0.76)
    assert cells["digits/resnet18/information"]["target"] == pytest.approx(0.85 * 0.9)
    assert cells["digits/resnet18/feedback"]["median"] == pytest.approx(0.46)
    assert cells["digits/resnet18/feedback"]["diverged"] == 1 and cells["digits/resnet18/feedback"]["passed"]
    assert cells["digits_simclr/alexnet/feedback"]["kind"] == "simclr"
    assert cells["digits_simclr/alexnet/feedback"]["chance"] == pytest.approx(1 / 99)
    assert sorted(gate["failed"]) == ["digits/resnet18/information", "digits_simclr/alexnet/feedback"]
    assert not gate["passed"]
    table = format_gate(gate)
    assert table.count("**MISS**") == 2 and "0.760 (>= 0.765)" in table
    excused = training_gate(runs, exceptions={"digits/resnet18/information": "known",
                                              "digits_simclr/alexnet/feedback": "known"})
    assert excused["passed"] and "(exception)" in format_gate(excused)
    assert cells["digits_simclr/alexnet/feedback"]["target"] == pytest.approx(10 / 99)
    assert training_gate(runs, ia_ratio=0.8, simclr_over_chance=5)["passed"]


def test_curve_baseline_reads_a_rule_off_the_learning_curve():
    rng = np.random.default_rng(0)
    rows = []
    for i in range(80):
        rule = ("sgdm", "adam", "feedback", "information")[i % 4]
        acc = {"sgdm": 0.9, "adam": 0.95, "feedback": 0.6, "information": 0.4}[rule] + rng.normal(0, 0.005)
        rows.append({"task": "digits", "learning_rule": rule, "status": "complete", "train_loss": rng.random(),
                     "train_accuracy": rng.random(), "val_loss": rng.random(), "val_accuracy": acc})
    planted = curve_baseline(pd.DataFrame(rows), n_splits=3, n_estimators=30)
    assert planted["test_accuracy_mean"] > 0.95 and planted["chance"] == 0.25 and planted["n_networks"] == 80
    for row in rows:
        row["val_accuracy"] = rng.random()
    noise = curve_baseline(pd.DataFrame(rows), n_splits=3, n_estimators=30)
    assert noise["test_accuracy_mean"] < 0.6


def test_learning_curve_control_separates_observables_from_the_final_accuracy(curve_dir):
    # planted: the observables carry the rule; the learning curve carries only a final accuracy that
    # differs by rule but overlaps, so matching on it leaves the curve at chance
    control = learning_curve_control(curve_dir, n_splits=5, observables="grad")
    assert "skipped" not in control and control["observables"] == "grad"
    acc = {(r["networks"], r["features"]): r["accuracy_mean"] for r in control["rows"]}
    assert acc["all", "grad"] > 0.9 and acc["matched", "grad"] > 0.75
    assert acc["all", "learning_curve"] > 0.65 and abs(acc["matched", "learning_curve"] - 0.5) < 0.15
    assert all(r["n_splits"] == 5 and r["accuracy_ci_low"] <= r["accuracy_mean"] for r in control["rows"])
    from lrid_generate._card_text import _control_markdown

    text = "\n".join(_control_markdown(control))
    assert "| adam vs sgdm | matched | " in text and "| adam vs sgdm | all | " in text
    assert f"{acc['matched', 'learning_curve']:.3f}" in text


def test_card_sections_on_the_tiny_preset(tiny_out):
    card = write_card(tiny_out, n_splits=2, n_estimators=20)
    runs = collect_runs(tiny_out)
    for cell in card["gate"]["cells"]:
        expected = runs.loc[runs["learning_rule"] == cell["rule"], "val_accuracy"].median()
        assert cell["median"] == pytest.approx(expected)
    check = card["forest_check"]
    assert set(check["per_observable_set_test_accuracy"]) == {"weight", "act", "grad", "all"}
    assert check["heldout_test_accuracy"] == {"architecture": None, "curriculum": None, "task": None}  # one value each
    table = dataset.read_table(tiny_out, columns=["run_id", "layer_name", "unit_fraction", "noise_std", "obs_seed",
                                                  "learning_rule"])
    corners = card["noise_corners"]
    assert [(c["unit_fraction"], c["noise_std"]) for c in corners] == [(0.5, 0.0), (0.5, 0.5), (1.0, 0.0), (1.0, 0.5)]
    for c in corners:
        sel = table[(table["unit_fraction"] == c["unit_fraction"]) & (table["noise_std"] == c["noise_std"])
                    & table["learning_rule"].isin(["feedback", "information"])]
        assert c["n_trajectories"] == len(sel[["run_id", "layer_name", "obs_seed"]].drop_duplicates())
        assert list(c["test_accuracy"]) == ["weight", "act", "grad", "all"]
        assert c["test_accuracy_mean"] == c["test_accuracy"]["all"]
    control = card["learning_curve_control"]  # one network per rule: no network-grouped split exists
    assert control["rows"] == [] and "2 networks per rule" in control["skipped"]
    text = (tiny_out / "CARD.md").read_text()
    assert "Training-quality gate" in text and "learning-curve baseline" in text and "grid corners" in text
    assert "| unit fraction | noise | trajectories | weight | act | grad | all |" in text
    assert "## The observables against the whole learning curve" in text and "Not computed: " in text


def test_card_command_exits_non_zero_when_the_gate_fails(tiny_out, capsys):
    code = main(["card", "--out", str(tiny_out), "--splits", "2"])
    gate = json.loads((tiny_out / "card.json").read_text())["gate"]
    assert code == (0 if gate["passed"] else 3)
    if not gate["passed"]:
        assert "| task | architecture |" in capsys.readouterr().out
        allowed = [f"--exception={key}=tiny preset: two epochs" for key in gate["failed"]]
        assert main(["card", "--out", str(tiny_out), "--splits", "2", *allowed]) == 0
    assert main(["card", "--out", str(tiny_out), "--exception", "no-reason"]) == 2


def test_lrn_twins_pair_networks_by_setting():
    from lrid_generate.card import lrn_twins

    rows = []
    for arch, offset in (("knet", 0.0), ("knetlrn", 0.3)):
        for rule, base in (("sgdm", 1.0), ("feedback", 2.0)):
            for seed in (None, 0):
                rows.append({"task": "fashion_mnist", "architecture": arch, "learning_rule": rule, "batch_size": 64,
                             "model_seed": seed, "dataset_seed": None, "status": "complete",
                             "train_loss": base + offset + (0.1 if seed == 0 else 0.0), "val_accuracy": 0.5})
    rows.append({**rows[0], "architecture": "alexnetlrn"})  # no plain twin on this task: skipped
    twins = lrn_twins(pd.DataFrame(rows))
    assert len(twins) == 1 and twins[0]["lrn"] == "knetlrn" and twins[0]["n_pairs"] == 4
    assert twins[0]["median_abs_train_loss_difference"] == pytest.approx(0.3)
    assert twins[0]["train_loss_plain"] == pytest.approx(1.55)


# --------------------------------------------------------------------------- re-making a card


def test_card_forests_do_not_depend_on_threads(tiny_sweep, tmp_path):
    import shutil

    from lrid_generate.card import FOREST_SECTIONS

    cards = []
    for n_jobs in (1, 2):
        out = tmp_path / f"jobs{n_jobs}"
        shutil.copytree(tiny_sweep, out)
        cards.append(write_card(out, n_splits=2, n_estimators=20, n_jobs=n_jobs))
    for key in (*FOREST_SECTIONS, "curve_baseline"):
        assert cards[0][key] == cards[1][key]


def test_card_reuses_its_forests_only_for_unchanged_data(tiny_sweep, tmp_path, capsys):
    import shutil

    from lrid_generate.card import FOREST_SECTIONS, CardError

    out = tmp_path / "out"
    shutil.copytree(tiny_sweep, out)
    with pytest.raises(FileNotFoundError, match="no earlier card"):
        write_card(out, reuse_forests=True)
    first = write_card(out, command="CMD", wall_seconds=90.0, wall_note="two sessions", n_splits=2, n_estimators=20)
    assert "- Wall time: 1.5 min; two sessions" in (out / "CARD.md").read_text()
    saved = json.loads((out / "card.json").read_text())
    saved["forest_check"]["test_accuracy_mean"] = 0.123  # a marker: reused, not recomputed
    (out / "card.json").write_text(json.dumps(saved))
    cell = first["gate"]["cells"][0]["key"]
    again = write_card(out, n_splits=2, n_estimators=20, reuse_forests=True, exceptions={cell: "a stated reason"})
    assert again["forest_check"]["test_accuracy_mean"] == 0.123
    assert all(again[key] == saved[key] for key in FOREST_SECTIONS)
    assert {c["key"]: c["exception"] for c in again["gate"]["cells"]}[cell] == "a stated reason"
    assert again["command"] == "CMD" and again["wall_note"] == "two sessions"  # kept from the earlier card
    kept = write_card(out, n_splits=2, n_estimators=20, reuse_forests=True)  # the exception stays
    assert {c["key"]: c["exception"] for c in kept["gate"]["cells"]}[cell] == "a stated reason"
    text = (out / "CARD.md").read_text()
    assert "0.123" in text and "- Wall time: 1.5 min; two sessions" in text
    with pytest.raises(CardError, match="computed with"):
        write_card(out, n_splits=3, n_estimators=20, reuse_forests=True)
    next(out.rglob("*.parquet")).unlink()  # one network fewer
    with pytest.raises(CardError, match=r"data changed .*networks 4 -> 3"):
        write_card(out, n_splits=2, n_estimators=20, reuse_forests=True)
    capsys.readouterr()
    assert main(["card", "--out", str(out), "--splits", "2", "--reuse-forests"]) == 1
    assert "error: " in capsys.readouterr().err
