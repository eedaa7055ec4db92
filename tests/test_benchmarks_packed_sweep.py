"""lrid_benchmarks/packed_sweep.py: packed vs one-at-a-time sweeps, CPU and GPU code paths (tiny, CPU)."""

import json

import pytest

from lrid_benchmarks import packed_sweep as ps
from lrid_benchmarks.speed import discover, has_quick_flag
from lrid_generate.presets import PRESETS


def _check_sides(document, n_networks):
    result = document["results"]
    packed, single = result["packed"], result["one_at_a_time"]
    for side in (packed, single):
        assert side["networks"] == side["complete"] == n_networks and side["diverged"] == 0
        assert side["networks_per_hour_wall"] == pytest.approx(3600 * n_networks / side["wall_seconds"])
        assert 0 < side["record_seconds"] < side["busy_seconds"]
        assert side["record_overhead"] == pytest.approx(
            side["record_seconds"] / (side["busy_seconds"] - side["record_seconds"]))
    assert single["pack_sizes"] == {"1": n_networks}
    assert sum(packed["pack_sizes"].values()) == n_networks
    assert max(int(k) for k in packed["pack_sizes"]) > 1
    key = result["rate"]
    assert result["ratio"] == pytest.approx(packed[key] / single[key])
    assert document["meets_target"] == (result["ratio"] >= document["target"])
    assert "quick mode" in document["summary"]


def test_cpu_quick_run_compares_the_same_networks(tmp_path):
    out = tmp_path / "cpu.json"
    document = ps.run("cpu", quick=True, output=out, verbose=False)
    assert json.loads(out.read_text()) == json.loads(json.dumps(document))
    _check_sides(document, len(PRESETS["tiny"].specs()))
    assert document["results"]["rate"] == "networks_per_hour_cpu"
    side = document["results"]["packed"]
    assert side["networks_per_hour_cpu"] == pytest.approx(3600 * side["networks"] / side["cpu_seconds"])


@pytest.mark.slow
def test_gpu_command_code_path_on_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    document = ps.run("cpu", quick=True, gpu_path=True, output=out, verbose=False)
    _check_sides(document, len(ps.gpu_slice(quick=True).specs()))
    assert document["results"]["rate"] == "networks_per_hour_cpu"  # on the CPU, CPU time; wall time on a GPU
    extra = document["packed_throughput"]
    assert extra["ratio"] == pytest.approx(extra["lrid_images_per_s"] / extra["plain_images_per_s"])
    assert "packed_throughput ratio" in document["summary"] and document["target"] == ps.GPU_TARGET


def test_gpu_slice_is_knet_sized():
    specs = ps.gpu_slice().specs()
    assert len(specs) == 16 and {s.architecture for s in specs} == {"knet"}
    assert {s.learning_rule for s in specs} == set(PRESETS["cifar10_knet"].rules)


def test_listed_with_a_quick_mode():
    assert "packed_sweep" in {b.name for b in discover()}
    assert has_quick_flag(ps.__file__)
