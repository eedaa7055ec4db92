"""Benchmark: the ``heldout_task`` experiment on public-sized data, with its defaults.

Builds a synthetic tidy table with exactly the public dataset's metadata
(``--size public``: 20,736 trajectories x 21 checkpoints,
``source="nayebi2020"``; :func:`lrid_analysis.synthetic.synthetic_table`), or
with the grid of the embedded dataset (``--size embedded``: 3 tasks x 4
architectures (4, 5, 8 and 22 layers) x 4 rules x 12 settings = 5,616
trajectories, as ``lrid_generate``'s ``embedded`` preset records them),
writes it to a temporary folder and runs :func:`lrid_analysis.experiments.heldout_task.run` on it with
the experiment's defaults (random forest, ``--selection compact``, observable
sets weight / act / grad / all, 10 reference splits) and ``n_jobs`` workers
(default 2), writing its outputs to the temporary folder.

Baseline, measured in the same process on the same data: one plain
``RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1)`` fit on
the training rows of the first held-out-task fold with all 24 admissible
observables (the largest single fit of the experiment). It is timed once
before and once after the experiment and the mean is used, so a change in
the load of a shared machine affects both sides. The ratio (experiment
seconds / baseline seconds) is the machine-independent figure: the
experiment costs that many single-core baseline fits of wall-clock time.

CPU time is measured too (this process plus the joblib workers, which are
shut down and reaped after the run so that ``RUSAGE_CHILDREN`` counts them):
on a shared machine the wall-clock time depends on the other load, the CPU
time hardly does, and ``cpu_seconds / n_jobs`` estimates the wall-clock time
on that many idle cores.

Targets, wall-clock on 2 cores: under 5 minutes on public-sized data, under
2-3 minutes on the embedded dataset. Results go to
``lrid_benchmarks/results/heldout_task.json``, one entry per size (a run updates
its own entry).

Usage::

    python lrid_benchmarks/heldout_task.py [--size public|embedded] [--n-jobs 2] [--output PATH]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd
from joblib.externals.loky import get_reusable_executor
from sklearn.ensemble import RandomForestClassifier

from lrid_benchmarks.machine import machine
from lrid_analysis import features
from lrid_analysis.dataset import load_view, write_table
from lrid_analysis.experiments import heldout_task
from lrid_analysis.splits import HeldOutTask
from lrid_analysis.synthetic import public_meta, synthetic_table
from lrid_analysis.atomic import write_json_atomic

TARGET_SECONDS = {"public": 300.0, "embedded": 150.0}
#: Layers per network of the embedded preset's architectures.
EMBEDDED_LAYERS = {"knet": 4, "knetc4": 5, "alexnet": 8, "resnet18": 22}
EMBEDDED_TASKS = ("digits", "digits_simclr", "signal1d")
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "heldout_task.json"




def embedded_meta():
    """Metadata rows shaped like the embedded dataset (one row per network layer).

    Returns
    -------
    pandas.DataFrame, shape (5616, 9)
    """
    rows = []
    for task, (arch, n_layers), rule, batch, model_seed, dataset_seed in itertools.product(
            EMBEDDED_TASKS, EMBEDDED_LAYERS.items(), ("adam", "sgdm", "feedback", "information"), (32, 64, 128),
            (None, 0), (None, 0)):
        for index in range(n_layers):
            position = ("early", "middle", "deep")[min(2, 3 * index // n_layers)]
            rows.append({"task": task, "architecture": arch, "learning_rule": rule, "batch_size": batch,
                         "model_seed": model_seed, "dataset_seed": dataset_seed, "layer_name": f"layer{index}",
                         "layer_index": index, "layer_position": position})
    meta = pd.DataFrame(rows)
    for column in ("model_seed", "dataset_seed"):
        meta[column] = meta[column].astype("Int64")
    return meta


def baseline_fit(X, y, train):
    """Wall-clock and CPU seconds of one plain 100-tree random forest fit on the given rows."""
    start, cpu = time.perf_counter(), time.process_time()
    RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1).fit(X[train], y[train])
    return time.perf_counter() - start, time.process_time() - cpu


def children_cpu_seconds():
    """User + system CPU seconds of the finished (reaped) child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(size="public", n_jobs=2, output=DEFAULT_OUTPUT, seed=0):
    """Build the data, time the baseline and the experiment, write the results; return them."""
    if size not in TARGET_SECONDS:
        raise ValueError(f"size must be one of {list(TARGET_SECONDS)}, got {size!r}")
    target = TARGET_SECONDS[size]
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    with tempfile.TemporaryDirectory(prefix="lrid-bench-heldout-") as folder:
        started = time.perf_counter()
        meta, source = (public_meta(), "nayebi2020") if size == "public" else (embedded_meta(), "embedded")
        data = write_table(synthetic_table(meta, source=source, seed=seed), Path(folder) / "data" / f"{size}.parquet")
        build_seconds = time.perf_counter() - started

        view = features.select(load_view(data), "all")
        X, y = features.flatten(view), view.y
        train, _ = next(HeldOutTask(seed=0).split(view.meta))
        baseline_before, baseline_cpu_before = baseline_fit(X, y, train)
        print(f"baseline: RandomForestClassifier(n_estimators=100) on {len(train)} x {X.shape[1]}: "
              f"{baseline_before:.1f} s ({baseline_cpu_before:.1f} s CPU)", flush=True)

        started, cpu, children = time.perf_counter(), time.process_time(), children_cpu_seconds()
        result = heldout_task.run(data.parent, n_jobs=n_jobs, out=Path(folder) / "out", seed=seed)
        experiment_seconds = time.perf_counter() - started
        get_reusable_executor().shutdown(wait=True)  # reap the workers so their CPU time is counted
        experiment_cpu = time.process_time() - cpu + children_cpu_seconds() - children

        baseline_after, baseline_cpu_after = baseline_fit(X, y, train)
        print(f"baseline again: {baseline_after:.1f} s ({baseline_cpu_after:.1f} s CPU)", flush=True)
    baseline = (baseline_before + baseline_after) / 2.0
    baseline_cpu = (baseline_cpu_before + baseline_cpu_after) / 2.0
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else None
    table = result.table
    results = {
        "size": size,
        "machine": machine(),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "n_jobs": n_jobs,
        "seed": seed,
        "trajectories": int(view.X.shape[0]),
        "build_seconds": round(build_seconds, 2),
        "experiment": {
            "classifier": result.params["classifier_settings"],
            "selection": result.params["selection"],
            "observables": list(result.params["observables"]),
            "n_splits_reference": result.params["n_splits"],
            "fits": int(len(table)),
            "sum_fit_seconds": round(float(table["fit_seconds"].sum()), 1),
            "seconds": round(experiment_seconds, 1),
            "cpu_seconds": round(experiment_cpu, 1),
            "estimated_seconds_on_idle_cores": round(experiment_cpu / n_jobs, 1),
        },
        "baseline": {
            "what": "RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1).fit on the first "
                    "held-out-task fold's training rows, all 24 admissible observables",
            "train_rows": int(len(train)),
            "features": int(X.shape[1]),
            "seconds_before": round(baseline_before, 2),
            "seconds_after": round(baseline_after, 2),
            "seconds": round(baseline, 2),
            "cpu_seconds_before": round(baseline_cpu_before, 2),
            "cpu_seconds_after": round(baseline_cpu_after, 2),
            "cpu_seconds": round(baseline_cpu, 2),
        },
        "ratio_to_baseline": round(experiment_seconds / baseline, 2),
        "cpu_ratio_to_baseline": round(experiment_cpu / baseline_cpu, 2),
        "target_seconds": target,
        "meets_target": experiment_seconds < target,
        "meets_target_on_idle_cores": experiment_cpu / n_jobs < target,
        "summary": json.loads(result.summary.to_json(orient="records")),
    }
    print(
        f"heldout_task on {view.X.shape[0]} trajectories ({size}-sized) with n_jobs={n_jobs}: {experiment_seconds:.1f} s "
        f"({len(table)} fits, {table['fit_seconds'].sum():.0f} s of fitting)\n"
        f"  = {results['ratio_to_baseline']} x the baseline fit ({baseline:.1f} s)\n"
        f"  CPU: {experiment_cpu:.0f} s = {results['cpu_ratio_to_baseline']} x the baseline's {baseline_cpu:.1f} s; "
        f"on {n_jobs} idle cores about {experiment_cpu / n_jobs:.0f} s\n"
        f"  target: < {target:.0f} s on 2 cores: {'met' if results['meets_target'] else 'MISSED'} here"
        f" (load average before {load_before}, after {load_after}); "
        f"{'met' if results['meets_target_on_idle_cores'] else 'MISSED'} by the CPU-time estimate"
    )
    output = Path(output)
    document = json.loads(output.read_text()) if output.is_file() else {}
    document = document if isinstance(document, dict) and "runs" in document else {"runs": {}}
    document["runs"][size] = results
    write_json_atomic(output, document)
    print(f"results written to {output}")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=list(TARGET_SECONDS), default="public",
                        help="public-sized (20,736 trajectories, default) or embedded-sized (5,616) data")
    parser.add_argument("--n-jobs", type=int, default=2, help="parallel fits of the experiment (default 2)")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="JSON results file")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data, splits and forests")
    args = parser.parse_args(argv)
    run(size=args.size, n_jobs=args.n_jobs, output=args.output, seed=args.seed)


if __name__ == "__main__":
    main()
