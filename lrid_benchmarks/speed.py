"""The project's speed benchmarks in one place: list, run, report.

Each speed benchmark is a script in ``benchmarks/`` that times an lrid
operation against a baseline run in the same process, prints the ratios and
writes ``lrid_benchmarks/results/<name>.json``. This module runs them as
subprocesses (each with its own ``--quick`` flag when asked for a quick run),
records every run in ``lrid_benchmarks/results/_runs.json`` (command, exit status,
seconds, quick or not) and prints a markdown table of the latest results with
the machine they ran on::

    python -m lrid_benchmarks --list
    python -m lrid_benchmarks --all --quick
    python -m lrid_benchmarks load_view
    python -m lrid_benchmarks forest_selection -- --full      # arguments after -- go to the script
    python -m lrid_benchmarks --report

Known benchmarks are listed in :data:`SPEED_BENCHMARKS`; any other script in
``benchmarks/`` whose docstring starts with ``Benchmark:`` is found as well.
A benchmark whose script does not exist (yet) is reported as missing.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from lrid_analysis.atomic import write_text_atomic

__all__ = ["SpeedBenchmark", "SPEED_BENCHMARKS", "BENCHMARKS_DIR", "RESULTS_DIR", "RunRecord", "discover",
           "has_quick_flag", "command", "run_benchmark", "headline", "machine_summary", "report", "main"]

BENCHMARKS_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCHMARKS_DIR / "results"
RUNS_FILE = "_runs.json"


@dataclass(frozen=True)
class SpeedBenchmark:
    """A speed benchmark script.

    Attributes
    ----------
    name : str
        Script stem: ``benchmarks/<name>.py`` writes ``results/<name>.json``.
    description : str
    quick_args : tuple of str
        Arguments for a quick run when the script has no ``--quick`` flag.
    owner : str
        Which part of the project writes the script (named when it is missing).
    """

    name: str
    description: str
    quick_args: tuple = ()
    owner: str = ""


#: The speed benchmarks of the project, in report order.
SPEED_BENCHMARKS = (
    SpeedBenchmark("load_view", "load the public-sized analysis view from Parquet, vs pyarrow and numpy.load",
                   quick_args=("--repeats", "2"), owner="lrid_analysis.dataset"),
    SpeedBenchmark("forest_selection", "random-forest out-of-bag selection vs nested 5-fold grid search",
                   owner="lrid_analysis.classifiers"),
    SpeedBenchmark("rule_step_time", "feedback / information alignment training step vs backprop",
                   owner="lrid_generate.rules"),
    SpeedBenchmark("recording_overhead", "recording the observables during training vs training alone",
                   owner="lrid_generate.recorder"),
    SpeedBenchmark("heldout_task", "held-out-task experiment on public-sized data",
                   owner="lrid_analysis.experiments"),
)

#: Modules of the benchmarks package that are not speed benchmarks.
_PACKAGE_MODULES = {"__init__", "__main__", "classifiers", "compat", "harness", "leaderboard", "plugins",
                    "speed", "tasks"}


def _docstring_first_line(path):
    try:
        doc = ast.get_docstring(ast.parse(Path(path).read_text(encoding="utf-8")))
    except (OSError, SyntaxError, ValueError):
        return ""
    return (doc or "").strip().splitlines()[0] if doc and doc.strip() else ""


def discover(root=BENCHMARKS_DIR):
    """The known benchmarks plus any ``Benchmark:`` script found in ``root``.

    Returns
    -------
    list of SpeedBenchmark
    """
    found = list(SPEED_BENCHMARKS)
    known = {b.name for b in found}
    for path in sorted(Path(root).glob("*.py")):
        if path.stem in known or path.stem in _PACKAGE_MODULES or path.stem.startswith("_"):
            continue
        first = _docstring_first_line(path)
        if first.lower().startswith("benchmark:"):
            found.append(SpeedBenchmark(path.stem, first.split(":", 1)[1].strip()))
    return found


def _script(bench, root):
    return Path(root) / f"{bench.name}.py"


def has_quick_flag(path):
    """Whether a script declares a ``--quick`` option (read from its source, not run)."""
    try:
        return re.search(r"""["']--quick["']""", Path(path).read_text(encoding="utf-8")) is not None
    except OSError:
        return False


def command(bench, quick=False, extra=(), root=BENCHMARKS_DIR):
    """The command line that runs a benchmark.

    Parameters
    ----------
    bench : SpeedBenchmark
    quick : bool
        Add ``--quick`` when the script has it, else ``bench.quick_args``.
    extra : sequence of str
        More arguments for the script.
    root : Path
        Folder of the scripts.

    Returns
    -------
    list of str
    """
    path = _script(bench, root)
    args = []
    if quick:
        args = ["--quick"] if has_quick_flag(path) else list(bench.quick_args)
    return [sys.executable, str(path), *args, *extra]


@dataclass
class RunRecord:
    """One benchmark run.

    Attributes
    ----------
    name : str
    status : {"ok", "failed", "missing"}
    returncode : int or None
    seconds : float
    command : list of str
    quick : bool
    message : str
    finished_at : str
    result_mtime_ns : int or None
        Modification time of ``results/<name>.json`` when this run wrote it
        (None when it did not, e.g. with ``--output`` elsewhere); the report
        uses the record only for the file it describes.
    """

    name: str
    status: str
    returncode: int | None = None
    seconds: float = 0.0
    command: list = field(default_factory=list)
    quick: bool = False
    message: str = ""
    finished_at: str = ""
    result_mtime_ns: int | None = None


def _read_json(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _record(results_dir, record):
    path = Path(results_dir) / RUNS_FILE
    runs = _read_json(path) or {}
    runs[record.name] = {k: v for k, v in vars(record).items() if k != "name"}
    write_text_atomic(path, json.dumps(runs, indent=2, sort_keys=True) + "\n")


def run_benchmark(bench, quick=False, extra=(), root=BENCHMARKS_DIR, results_dir=RESULTS_DIR, timeout=None):
    """Run one benchmark script as a subprocess (its output goes to this terminal).

    Returns
    -------
    RunRecord
        ``missing`` (with a message naming the file and who writes it) when
        the script does not exist; the record of a real run is also stored in
        ``<results_dir>/_runs.json``.
    """
    path = _script(bench, root)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if not path.is_file():
        by = f" (to be written with {bench.owner})" if bench.owner else ""
        return RunRecord(bench.name, "missing", message=f"{path} does not exist yet{by}", finished_at=now)
    cmd = command(bench, quick=quick, extra=extra, root=root)
    env = dict(os.environ)
    repo = str(Path(root).resolve().parent)
    env["PYTHONPATH"] = repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    result = Path(results_dir) / f"{bench.name}.json"
    before = result.stat().st_mtime_ns if result.is_file() else None
    start = time.perf_counter()
    try:
        completed = subprocess.run(cmd, env=env, timeout=timeout, check=False)
        code, message = completed.returncode, ""
    except subprocess.TimeoutExpired:
        code, message = None, f"timed out after {timeout} s"
    seconds = time.perf_counter() - start
    status = "ok" if code == 0 else "failed"
    if code not in (0, None):
        message = f"exit status {code}"
    after = result.stat().st_mtime_ns if result.is_file() else None
    record = RunRecord(bench.name, status, code, round(seconds, 2), cmd[1:], bool(quick), message,
                       datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       after if after is not None and after != before else None)
    _record(results_dir, record)
    return record


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

_HEADLINE = re.compile(r"(^|_)(ratio|speedup)($|_)|^ratio_to_|^meets_")
_SKIP_SEGMENTS = {"targets", "target", "parameters", "machine", "params"}


def _leaves(value, prefix=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, prefix + (str(key),))
    elif not isinstance(value, list):
        yield prefix, value


def _format_value(value):
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.3g}" if math.isfinite(value) else str(value)
    return str(value)


def headline(document, limit=20):
    """The ratios, speed-ups and target checks of a result document.

    A ``summary`` entry (string or flat dict) is used when the document has
    one; otherwise every numeric or boolean leaf with a key on its path that
    names a ratio, a speed-up or a ``meets_*`` check, outside ``targets`` /
    ``parameters`` / ``machine``.

    Returns
    -------
    list of (str, str)
        ``(dotted key, formatted value)``, at most ``limit``.
    """
    if isinstance(document, dict) and isinstance(document.get("summary"), str):
        return [("summary", document["summary"])]
    items = []
    for path, value in _leaves(document):
        if not path or any(p in _SKIP_SEGMENTS for p in path[:-1]) or path[0] in _SKIP_SEGMENTS:
            continue
        if any(_HEADLINE.search(part) for part in path) and isinstance(value, (bool, int, float)):
            items.append((".".join(path), _format_value(value)))
    return items[:limit]


def _find_machine(document):
    """The first ``machine`` dict in a result document, searched breadth-first (runs nest it)."""
    queue = [document]
    while queue:
        node = queue.pop(0)
        if isinstance(node, dict):
            if isinstance(node.get("machine"), dict):
                return node["machine"]
            queue.extend(node.values())
    return None


def machine_summary(document):
    """One line describing the machine of a result document ("unknown machine" when absent)."""
    info = _find_machine(document)
    if info is None:
        return "unknown machine"
    parts = []
    if info.get("processor"):
        parts.append(str(info["processor"]))
    cpus = info.get("usable_cpus") or info.get("cpu_count")
    if cpus:
        parts.append(f"{cpus} CPUs")
    for key in ("device", "gpu", "cuda_device"):
        if info.get(key) and str(info[key]) != "cpu":
            parts.append(str(info[key]))
    if info.get("platform"):
        parts.append(str(info["platform"]).split("-with-")[0])
    if info.get("python"):
        parts.append(f"Python {info['python']}")
    if info.get("torch"):
        parts.append(f"torch {info['torch']}")
    return ", ".join(parts) or "unknown machine"


def report(results_dir=RESULTS_DIR, root=BENCHMARKS_DIR):
    """A markdown table of the latest result of every benchmark.

    Returns
    -------
    str
    """
    runs = _read_json(Path(results_dir) / RUNS_FILE) or {}
    lines = ["| benchmark | result (ratios against the in-process baseline) | machine | run |",
             "|---|---|---|---|"]
    for bench in discover(root):
        path = Path(results_dir) / f"{bench.name}.json"
        document = _read_json(path)
        if document is None:
            state = "script missing" if not _script(bench, root).is_file() else "not run yet"
            lines.append(f"| {bench.name} | {state} | | |")
            continue
        items = headline(document)
        result = "<br>".join(f"{k}: {v}" for k, v in items) or "(no ratio found; see the JSON)"
        run = runs.get(bench.name, {})
        if run.get("result_mtime_ns") != path.stat().st_mtime_ns:
            run = {}  # the last run did not write this file
        when = run.get("finished_at") or datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).isoformat(
            timespec="seconds")
        quick = run.get("quick")
        if quick is None and isinstance(document.get("parameters"), dict):
            quick = document["parameters"].get("quick")
        mode = {True: "quick", False: "full"}.get(quick, "")
        lines.append(f"| {bench.name} | {result} | {machine_summary(document)} | {when[:16].replace('T', ' ')}"
                     f"{' (' + mode + ')' if mode else ''} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# Command
# ---------------------------------------------------------------------------

_EPILOG = """\
examples:
  python -m lrid_benchmarks --list                 # what exists, and its quick flag
  python -m lrid_benchmarks --all --quick          # every benchmark, quickly
  python -m lrid_benchmarks load_view              # one benchmark, its default settings
  python -m lrid_benchmarks forest_selection -- --full --splits 10   # pass options to the script
  python -m lrid_benchmarks --report               # markdown table of the latest results

The classifier harness is a separate command: python -m lrid_benchmarks.classifiers --help
"""


def _listing(root):
    benches = discover(root)
    width = max(len(b.name) for b in benches)
    lines = ["speed benchmarks:"]
    for b in benches:
        path = _script(b, root)
        if not path.is_file():
            state = "missing"
        else:
            state = "--quick" if has_quick_flag(path) else ("quick: " + " ".join(b.quick_args) if b.quick_args
                                                            else "no quick mode")
        lines.append(f"  {b.name:<{width}}  {b.description} [{state}]")
    return "\n".join(lines)


def main(argv=None, root=BENCHMARKS_DIR, results_dir=RESULTS_DIR):
    """Run the ``python -m lrid_benchmarks`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(
        prog="python -m lrid_benchmarks", description="List, run and report the speed benchmarks of lrid. Each "
        "times an lrid operation against a baseline run in the same process and writes "
        "lrid_benchmarks/results/<name>.json.", epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (see --list)")
    parser.add_argument("--all", action="store_true", help="run every benchmark whose script exists")
    parser.add_argument("--quick", action="store_true", help="short runs (each script's --quick, or a few repeats)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--report", action="store_true", help="print a markdown table of the latest results")
    parser.add_argument("--timeout", type=float, default=None, metavar="S", help="stop a benchmark after S seconds")
    args = parser.parse_args(argv)
    benches = {b.name: b for b in discover(root)}
    if args.list or not (args.names or args.all or args.report):
        print(_listing(root))
        if not (args.list or args.report):
            print("\nrun one with: python -m lrid_benchmarks NAME   (or --all [--quick]; --report for the table)")
        return 0
    unknown = [n for n in args.names if n not in benches]
    if unknown:
        print(f"error: unknown benchmark(s) {unknown}; known: {', '.join(benches)}", file=sys.stderr)
        return 2
    if extra and (args.all or len(args.names) != 1):
        print("error: arguments after -- go to one benchmark; name exactly one", file=sys.stderr)
        return 2
    chosen = list(benches.values()) if args.all else [benches[n] for n in args.names]
    records = []
    for bench in chosen:
        print(f"\n== {bench.name}: {bench.description}", flush=True)
        script = _script(bench, root)
        if args.quick and script.is_file() and not has_quick_flag(script) and not bench.quick_args:
            print("   (this script has no quick mode: running its defaults)", flush=True)
        record = run_benchmark(bench, quick=args.quick, extra=extra, root=root, results_dir=results_dir,
                               timeout=args.timeout)
        if record.status == "missing":
            print(f"   not available: {record.message}", flush=True)
        else:
            print(f"== {bench.name}: {record.status} in {record.seconds:.1f} s"
                  f"{' (' + record.message + ')' if record.message else ''}", flush=True)
        records.append(record)
    if records:
        print("\nsummary:")
        for r in records:
            print(f"  {r.name:<20} {r.status}{'  ' + r.message if r.message else ''}")
    if args.report:
        print()
        print(report(results_dir, root))
    failed = [r for r in records if r.status == "failed" or (r.status == "missing" and not args.all)]
    return 1 if failed else 0
