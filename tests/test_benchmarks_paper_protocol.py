"""The paper_protocol benchmark's quick mode and its extrapolation arithmetic."""

import json

import numpy as np
import pytest

from lrid_benchmarks import paper_protocol as P


@pytest.mark.filterwarnings("ignore")
def test_quick_mode_records_time_and_accuracy_per_classifier(tmp_path):
    out = tmp_path / "paper_protocol.json"
    doc = P.run(quick=True, output=out)
    assert json.loads(out.read_text())["quick"]["rows"] == doc["rows"]
    assert set(doc["classifiers"]) == {"random_forest", "svm", "conv1d"}
    factor = sum(P.SET_SIZES.values()) / P.SET_SIZES["all"]
    assert factor == 2.0
    for entry in doc["classifiers"].values():
        assert 0.0 <= entry["accuracy"] <= 1.0
        assert entry["whole_run_seconds_full"] == pytest.approx(entry["per_selection_seconds_full"] * 10 * factor)
    assert doc["whole_run_seconds_full"] == pytest.approx(
        sum(e["whole_run_seconds_full"] for e in doc["classifiers"].values()))
    svm = doc["classifiers"]["svm"]
    assert svm["grid_size"] == 84 and svm["fits_per_selection"] == 84 * 5 + 1
    per_fit_full = np.mean(svm["measured_seconds_per_fit"]) * (P.PUBLIC_TRAIN_ROWS * 4 / 5) / svm["fold_rows"]
    assert svm["per_selection_seconds_full"] == pytest.approx(per_fit_full * 421)
    conv = doc["classifiers"]["conv1d"]
    assert conv["grid_size"] == 720 and conv["epochs_extrapolated"] == 400
    steps = {int(b): s for b, s in conv["step_seconds"].items()}
    fold, train = P.PUBLIC_TRAIN_ROWS * 4 / 5, P.PUBLIC_TRAIN_ROWS
    expected = (360 * 5 * 400 * ((fold // 512) * steps[512] + (fold // 1024) * steps[1024])
                + 400 * ((train // 512) * steps[512] + (train // 1024) * steps[1024]) / 2)
    assert conv["per_selection_seconds_full"] == pytest.approx(expected)
    forest = doc["classifiers"]["random_forest"]
    n, full = doc["train_rows"], P.PUBLIC_TRAIN_ROWS
    assert forest["per_selection_seconds_full"] == pytest.approx(
        forest["measured_fit_seconds"] * full * np.log(full) / (n * np.log(n)))
