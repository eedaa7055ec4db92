"""The speed-benchmark collection (lrid_benchmarks/speed.py, ``python -m lrid_benchmarks``)."""

import json
import os
import sys
import textwrap

import pytest

from lrid_benchmarks import speed

FAKE = '''\
"""Benchmark: a fake timing used by the tests.

It writes results/{name}.json next to itself.
"""
import argparse, json, pathlib, sys
parser = argparse.ArgumentParser()
{quick}
parser.add_argument("--repeats", type=int, default=5)
parser.add_argument("--fail", action="store_true")
args = parser.parse_args()
if args.fail:
    sys.exit(3)
out = pathlib.Path(__file__).parent / "results" / "{name}.json"
out.parent.mkdir(exist_ok=True)
doc = {{"machine": {{"processor": "fakecpu", "cpu_count": 2, "python": "3.x"}},
       "parameters": {{"quick": {quick_value}, "repeats": args.repeats}},
       "targets": {{"ratio": 9.0}},
       "cases": {{"a": {{"median_s": 0.5, "ratio_to_baseline": 1.25, "meets_target": True}}}}}}
out.write_text(json.dumps(doc))
print("ratio", 1.25, "argv", sys.argv[1:])
'''


@pytest.fixture
def root(tmp_path):
    with_quick = FAKE.format(name="fast_thing", quick='parser.add_argument("--quick", action="store_true")',
                             quick_value="args.quick")
    without = FAKE.format(name="load_view", quick="", quick_value="None")
    (tmp_path / "fast_thing.py").write_text(with_quick)
    (tmp_path / "load_view.py").write_text(without)
    (tmp_path / "helper.py").write_text('"""Not a benchmark."""\n')
    return tmp_path


def test_discover_lists_known_and_found(root):
    names = [b.name for b in speed.discover(root)]
    assert names[:5] == [b.name for b in speed.SPEED_BENCHMARKS]
    assert "fast_thing" in names and "helper" not in names
    found = {b.name: b for b in speed.discover(root)}
    assert found["fast_thing"].description == "a fake timing used by the tests."


def test_known_benchmarks_in_this_repository():
    names = [b.name for b in speed.discover()]
    for expected in ("load_view", "forest_selection", "rule_step_time", "recording_overhead", "heldout_task"):
        assert expected in names
    assert "classifiers" not in names and "harness" not in names


def test_quick_flag_detection_and_command(root):
    bench = {b.name: b for b in speed.discover(root)}
    assert speed.has_quick_flag(root / "fast_thing.py") and not speed.has_quick_flag(root / "load_view.py")
    assert speed.command(bench["fast_thing"], quick=True, root=root)[1:] == [str(root / "fast_thing.py"), "--quick"]
    # no --quick in the script: the benchmark's own quick arguments
    assert speed.command(bench["load_view"], quick=True, root=root)[2:] == list(bench["load_view"].quick_args)
    assert speed.command(bench["load_view"], quick=False, extra=["--repeats", "7"], root=root)[2:] == ["--repeats",
                                                                                                         "7"]
    assert speed.command(bench["fast_thing"])[0] == sys.executable


def test_run_records_and_report(root, capsys):
    results = root / "results"
    bench = {b.name: b for b in speed.discover(root)}
    record = speed.run_benchmark(bench["fast_thing"], quick=True, root=root, results_dir=results)
    assert record.status == "ok" and record.returncode == 0 and record.quick
    assert json.loads((results / "fast_thing.json").read_text())["parameters"]["quick"] is True
    runs = json.loads((results / "_runs.json").read_text())
    assert runs["fast_thing"]["status"] == "ok" and runs["fast_thing"]["command"][-1] == "--quick"
    failed = speed.run_benchmark(bench["load_view"], extra=["--fail"], root=root, results_dir=results)
    assert failed.status == "failed" and failed.returncode == 3 and "exit status 3" in failed.message
    missing = speed.run_benchmark(bench["recording_overhead"], root=root, results_dir=results)
    assert missing.status == "missing" and "recording_overhead.py does not exist yet" in missing.message

    text = speed.report(results, root)
    row = next(line for line in text.splitlines() if line.startswith("| fast_thing |"))
    assert "cases.a.ratio_to_baseline: 1.25" in row and "cases.a.meets_target: yes" in row
    assert "targets" not in row and "fakecpu, 2 CPUs" in row and "(quick)" in row
    assert "| recording_overhead | script missing |" in text
    assert "| forest_selection | script missing |" in text  # not in the fake root

    # a run that did not write the file (e.g. --output elsewhere) does not relabel it
    rewritten = json.loads((results / "fast_thing.json").read_text())
    rewritten["parameters"]["quick"] = False
    stamp = (results / "fast_thing.json").stat().st_mtime_ns
    (results / "fast_thing.json").write_text(json.dumps(rewritten))
    os.utime(results / "fast_thing.json", ns=(stamp + 10**9, stamp + 10**9))  # coarse clocks: force a new time
    row = next(line for line in speed.report(results, root).splitlines() if line.startswith("| fast_thing |"))
    assert "(full)" in row


def test_headline_prefers_a_summary():
    assert speed.headline({"summary": "x3 faster", "ratio": 3.0}) == [("summary", "x3 faster")]
    items = speed.headline({"models": {"knet": {"ratio": {"feedback": 1.1}, "meets_target": {"feedback": False}}},
                            "targets": {"feedback": 1.2}, "parameters": {"ratio": 1}})
    assert items == [("models.knet.ratio.feedback", "1.1"), ("models.knet.meets_target.feedback", "NO")]


def test_main(root, capfd):
    results = root / "results"
    assert speed.main(["--list"], root=root, results_dir=results) == 0
    listing = capfd.readouterr().out
    assert "fast_thing" in listing and "[--quick]" in listing and "recording_overhead" in listing
    assert "[missing]" in listing
    assert speed.main(["nope"], root=root, results_dir=results) == 2
    assert "unknown benchmark" in capfd.readouterr().err
    assert speed.main(["fast_thing", "--quick", "--report"], root=root, results_dir=results) == 0
    out = capfd.readouterr().out
    assert "fast_thing: ok" in out and "| fast_thing |" in out
    assert speed.main(["load_view", "--", "--repeats", "2"], root=root, results_dir=results) == 0
    assert "argv ['--repeats', '2']" in capfd.readouterr().out
    # --all: missing scripts are reported, not fatal
    assert speed.main(["--all", "--quick"], root=root, results_dir=results) == 0
    out = capfd.readouterr().out
    assert "not available" in out and "forest_selection" in out
    # naming a missing one is an error
    assert speed.main(["recording_overhead"], root=root, results_dir=results) == 1
    assert speed.main(["fast_thing", "load_view", "--", "--x"], root=root, results_dir=results) == 2


def test_module_entry_point_help():
    import subprocess

    done = subprocess.run([sys.executable, "-m", "lrid_benchmarks", "--help"], capture_output=True, text=True,
                          check=False, timeout=120)
    assert done.returncode == 0
    assert "--report" in done.stdout and "python -m lrid_benchmarks --all --quick" in textwrap.dedent(done.stdout)


def test_machine_summary_finds_a_nested_machine():
    doc = {"runs": {"public": {"size": 3, "machine": {"processor": "nestedcpu", "usable_cpus": 2}}}}
    assert speed.machine_summary(doc) == "nestedcpu, 2 CPUs"
    assert speed.machine_summary({"runs": {}}) == "unknown machine"
