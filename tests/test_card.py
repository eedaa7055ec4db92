"""The data card of a generated dataset (lrid_generate.card)."""

import json

import numpy as np
import pytest

from lrid_analysis import dataset
from lrid_generate.card import write_card
from lrid_generate.store import collect_runs
from lrid_generate.sweep import run_sweep


@pytest.fixture(scope="module")
def tiny_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    run_sweep("tiny", out, progress=False)
    return out


def test_card_counts_and_accuracies_match_the_data(tiny_out):
    card = write_card(tiny_out, command="python -m lrid_generate sweep --preset tiny", wall_seconds=12.0,
                      n_splits=2, n_estimators=20)
    runs = collect_runs(tiny_out)
    table = dataset.read_table(tiny_out)
    assert card["counts"]["networks"] == len(runs) == 4
    assert card["counts"]["rows"] == len(table)
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
