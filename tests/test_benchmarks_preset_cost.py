"""lrid_benchmarks.preset_cost: per-network measurement and the grid projection."""

import pytest

from lrid_benchmarks.preset_cost import measure, project
from lrid_generate.presets import PRESETS


def test_project_adds_recording_and_epochs_per_network():
    tiny = PRESETS["tiny"]
    measured = {
        "digits/knet/sgdm": {"record_cpu_seconds": 1.0, "train_cpu_seconds_per_epoch": 2.0},
        "digits/knet/information": {"record_cpu_seconds": 1.5, "train_cpu_seconds_per_epoch": 4.0,
                                    "noise_grid_record_cpu_seconds": 6.0},
    }
    result = project(tiny, measured, cores=2, packing=(1.0, 2.0))
    epochs = tiny.epochs
    # sgdm and adam/FA (as sgdm): 1 + 2 e; FA on the noise grid: IA's measured grid recording 6 + 2 e;
    # IA (noise grid): 6 + 4 e
    expected = 2 * (1 + 2 * epochs) + (6 + 2 * epochs) + (6 + 4 * epochs)
    assert result["total_cpu_seconds"] == pytest.approx(expected)
    assert result["wall_minutes"]["2.0"] == pytest.approx(expected / 2 / 2 / 60)
    assert result["networks"] == 4 and result["unmeasured"] == []
    assert project(tiny, {}, cores=2)["unmeasured"] == sorted(
        f"digits/knet/{r}" for r in tiny.rules)


def test_measure_times_one_short_network_per_rule():
    measured = measure(PRESETS["tiny"], epochs=1, rules=("sgdm",), progress=False)
    entry = measured["digits/knet/sgdm"]
    assert entry["status"] == "complete" and entry["epochs"] == 1
    assert 0 < entry["record_share"] < 1
    assert entry["record_cpu_seconds"] + entry["train_cpu_seconds_per_epoch"] == pytest.approx(entry["cpu_seconds"])
