"""Benchmark: time to load the public-sized analysis view from tidy Parquet.

Builds a synthetic table with exactly the public dataset's metadata
(20,736 trajectories x 21 checkpoints = 435,456 rows, all 45 observables),
writes it once with :func:`lrid_analysis.dataset.write_table`, then times
:func:`lrid_analysis.dataset.load_view` for the 24 admissible and for all 45
observables. Baselines are measured in the same process on the same file:

* ``pyarrow.parquet.read_table(path).to_pandas()`` (reading everything,
  no pivoting), and the same restricted to the columns ``load_view`` reads;
* ``numpy.load`` of the finished ``X`` array from a ``.npy`` file (the
  fastest conceivable load, with no metadata).

Each candidate is called ``repeats`` times, interleaved with the others;
the first call (cold: fresh memory), the minimum and the median are
reported, and ratios are taken between medians. Target: the analysis view in well under
one second (median). Results go to ``lrid_benchmarks/results/load_view.json``.

Usage::

    python lrid_benchmarks/load_view.py [--repeats 5] [--output PATH]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from lrid_benchmarks.machine import machine
from lrid_analysis.dataset import META_COLUMNS, load_view, write_table
from lrid_analysis.observables import ADMISSIBLE_NAMES, OBSERVABLE_NAMES
from lrid_analysis.synthetic import public_meta, synthetic_table
from lrid_analysis.atomic import write_json_atomic

TARGET_SECONDS = 1.0
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "load_view.json"


def time_round_robin(functions, repeats):
    """Time each of ``functions`` ``repeats`` times, one call of each per round.

    Interleaving spreads any load from other processes evenly over the
    candidates, which keeps the ratios fair on a shared machine.

    Returns
    -------
    dict of str to list of float
        Seconds of every call, in call order (the first call ran on fresh memory).
    """
    seconds = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            seconds[name].append(time.perf_counter() - start)
    return seconds




def run(repeats=5, output=DEFAULT_OUTPUT, seed=0):
    """Build the table, time the loads and write the results; return them as a dict."""
    started = time.perf_counter()
    table = synthetic_table(public_meta(), source="nayebi2020", seed=seed)
    build_seconds = time.perf_counter() - started
    results = {"machine": machine(), "repeats": repeats, "seed": seed, "rows": len(table),
               "target_seconds": TARGET_SECONDS, "build_seconds": round(build_seconds, 3), "cases": {}}
    with tempfile.TemporaryDirectory(prefix="lrid-bench-") as folder:
        path = write_table(table, Path(folder) / "nayebi2020.parquet")
        results["file_megabytes"] = round(path.stat().st_size / 1e6, 1)
        del table
        for label, names in (("admissible_24", list(ADMISSIBLE_NAMES)), ("all_45", list(OBSERVABLE_NAMES))):
            observables = None if label == "admissible_24" else "all45"
            npy = Path(folder) / f"X_{label}.npy"
            shape = load_view(path, observables=observables).X.shape
            np.save(npy, np.zeros(shape, dtype=np.float32))
            columns = list(META_COLUMNS) + names
            seconds = time_round_robin({
                "load_view": lambda: load_view(path, observables=observables),
                "read_all_to_pandas": lambda: pq.read_table(path).to_pandas(),
                "read_columns_to_pandas": lambda: pq.read_table(path, columns=columns).to_pandas(),
                "np_load_X": lambda: np.load(npy),
            }, repeats)
            median = {name: statistics.median(values) for name, values in seconds.items()}
            case = {
                "shape": list(shape),
                "load_view_first_s": round(seconds["load_view"][0], 4),
                "load_view_min_s": round(min(seconds["load_view"]), 4),
                **{f"{name}_median_s": round(value, 4) for name, value in median.items()},
                **{f"ratio_to_{name}": round(median["load_view"] / median[name], 2)
                   for name in median if name != "load_view"},
                "meets_target": median["load_view"] < TARGET_SECONDS,
            }
            results["cases"][label] = case
            print(
                f"{label}: load_view median {median['load_view']:.3f} s (first {seconds['load_view'][0]:.3f} s, "
                f"min {min(seconds['load_view']):.3f} s), X {tuple(shape)}\n"
                f"  baselines (median): pq.read_table+to_pandas {median['read_all_to_pandas']:.3f} s "
                f"(load_view x{case['ratio_to_read_all_to_pandas']}), same columns "
                f"{median['read_columns_to_pandas']:.3f} s (x{case['ratio_to_read_columns_to_pandas']}), "
                f"np.load(X) {median['np_load_X']:.4f} s (x{case['ratio_to_np_load_X']})\n"
                f"  target: median < {TARGET_SECONDS:.1f} s: {'met' if case['meets_target'] else 'MISSED'}"
            )
    write_json_atomic(output, results)
    print(f"results written to {output}")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement (default 5)")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="JSON results file")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic table")
    args = parser.parse_args(argv)
    run(repeats=args.repeats, output=args.output, seed=args.seed)


if __name__ == "__main__":
    main()
