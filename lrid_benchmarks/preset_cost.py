"""What a preset costs: per-network CPU time of each (task, architecture, rule), projected to the whole grid.

For every (task, architecture) of a preset (and the rules asked for) one
network of the grid (middle batch size, seeds None, the preset's recording
settings) is trained for ``--epochs`` epochs on one torch thread, timing
process CPU; the recording share is split off with the run's own
wall-clock ratio. A network's full cost is then projected as
``recording + training per epoch x the preset's epochs`` (recording is the
same 21 checkpoints however long the run), networks of the unit-noise grid
get the recording time measured with their conditions, and the grid total
is divided by the cores (and a packing speed-up factor, a parameter).

Assumptions (stated in the output): CPU time per training sample at the
middle batch size stands for all batch sizes; rules not measured cost as
SGDM (Adam, FA) or as IA. The projection uses CPU time, so it is not
inflated by other jobs on a shared machine; wall time on free cores is
close to it.

    python -m lrid_benchmarks.preset_cost --preset embedded --epochs 1 [--rules sgdm information]
        [--cores 2] [--packing 1.0 2.0 3.0] [--output lrid_benchmarks/results/preset_cost.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

__all__ = ["measure", "project"]

_STAND_IN = {"adam": "sgdm", "feedback": "sgdm", "sgdm": "sgdm", "information": "information"}


def measure(preset, epochs=1, rules=("sgdm", "information"), pairs=None, progress=True):
    """CPU seconds of one short network per (task, architecture, rule).

    Returns
    -------
    dict
        ``"task/architecture/rule"`` -> ``{"epochs", "cpu_seconds", "record_share", "record_cpu_seconds",
        "train_cpu_seconds_per_epoch", "val_accuracy", "noise_grid_record_cpu_seconds"}``.
    """
    import torch

    from lrid_generate.presets import get_preset
    from lrid_generate.recorder import FULL_ACCESS
    from lrid_generate.train import _task_for, keep_freed_memory, train_network

    torch.set_num_threads(1)
    keep_freed_memory()
    preset = get_preset(preset)
    middle = sorted(preset.batch_sizes)[len(preset.batch_sizes) // 2]
    specs = {}
    for spec in preset.specs():
        if spec.batch_size == middle and spec.model_seed is None and spec.dataset_seed is None:
            specs[spec.task, spec.architecture, spec.learning_rule] = spec
    out = {}
    for (task, arch, rule), spec in specs.items():
        if rule not in rules or (pairs and (task, arch) not in pairs):
            continue
        runs = [("plain", dataclasses.replace(spec, epochs=int(epochs), conditions=(FULL_ACCESS,)))]
        if len(spec.conditions) > 1:
            runs.append(("grid", dataclasses.replace(spec, epochs=int(epochs))))
        entry = {}
        _task_for(spec, "cpu", None)  # load (or generate) the data outside the timing
        for kind, short in runs:
            start = time.process_time()
            _, summary = train_network(short)
            cpu = time.process_time() - start
            share = summary["record_seconds"] / max(summary["seconds"], 1e-9)
            if kind == "plain":
                entry.update(epochs=int(epochs), cpu_seconds=cpu, record_share=share, record_cpu_seconds=cpu * share,
                             train_cpu_seconds_per_epoch=cpu * (1 - share) / int(epochs),
                             val_accuracy=summary.get("val_accuracy"), status=summary["status"])
            else:
                entry["noise_grid_record_cpu_seconds"] = cpu * share
                entry["noise_grid_conditions"] = len(spec.conditions)
        out[f"{task}/{arch}/{rule}"] = entry
        if progress:
            print(f"{task}/{arch}/{rule}: {json.dumps(entry)}", file=sys.stderr, flush=True)
    return out


def project(preset, measured, cores=2, packing=(1.0,)):
    """Projected CPU time of every network of the preset and of the grid on ``cores`` cores.

    Returns
    -------
    dict
        ``per_pair`` (task/architecture -> mean projected CPU seconds per network), ``total_cpu_seconds``,
        ``wall_minutes`` (packing factor -> minutes on ``cores`` cores), ``networks``, ``unmeasured``.
    """
    from lrid_generate.presets import get_preset

    preset = get_preset(preset)
    total, per_pair, unmeasured = 0.0, {}, set()
    for spec in preset.specs():
        key = f"{spec.task}/{spec.architecture}/{spec.learning_rule}"
        stand_in = f"{spec.task}/{spec.architecture}/{_STAND_IN[spec.learning_rule]}"
        entry = measured.get(key) or measured.get(stand_in)
        if entry is None:
            unmeasured.add(key)
            continue
        record = entry["record_cpu_seconds"]
        if len(spec.conditions) > 1:  # any rule's measured grid recording on this (task, architecture)
            grid = [m["noise_grid_record_cpu_seconds"] for k, m in measured.items()
                    if k.startswith(f"{spec.task}/{spec.architecture}/") and "noise_grid_record_cpu_seconds" in m]
            record = max(grid) if grid else record * len(spec.conditions)
        seconds = record + entry["train_cpu_seconds_per_epoch"] * spec.epochs
        total += seconds
        per_pair.setdefault(f"{spec.task}/{spec.architecture}", []).append(seconds)
    return {
        "networks": len(preset.specs()),
        "per_pair": {k: sum(v) / len(v) for k, v in per_pair.items()},
        "total_cpu_seconds": total,
        "cores": cores,
        "wall_minutes": {str(p): total / cores / p / 60 for p in packing},
        "unmeasured": sorted(unmeasured),
        "assumptions": "CPU time per epoch at the middle batch for every batch size; Adam and FA cost as SGDM "
                       "where not measured; noise-grid networks use their measured recording time",
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="embedded")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of each measured network")
    parser.add_argument("--rules", nargs="+", default=["sgdm", "information"])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--packing", type=float, nargs="+", default=[1.0, 2.0, 3.0],
                        help="packing speed-up factors to project with")
    parser.add_argument("--output", default=None, help="JSON file for the measurements and projection")
    args = parser.parse_args(argv)
    import platform

    import torch

    measured = measure(args.preset, args.epochs, tuple(args.rules))
    result = {"preset": args.preset, "measured": measured,
              "projection": project(args.preset, measured, args.cores, tuple(args.packing)),
              "machine": {"python": platform.python_version(), "torch": torch.__version__,
                          "processor": platform.processor(), "threads": 1}}
    text = json.dumps(result, indent=1)
    if args.output:
        from lrid_analysis.atomic import write_text_atomic

        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.output, text)
    print(json.dumps(result["projection"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
