"""Benchmark: recording the observables during training vs training alone.

Two measurements, both in this process:

1. Whole runs of the ``embedded`` preset (CPU, one torch thread):
   :func:`lrid_generate.train.train_network` times its recorder (all
   checkpoints, every layer, every measurement condition) apart from the
   rest of the run, so ``overhead_ratio = record_seconds / train_seconds``
   is what recording adds to a run's time. ``train_seconds`` is the run's
   time without the recorder. The table also gives seconds per network,
   from which the whole preset's time on 1 and 2 cores is estimated (a
   weighted mean over the (task, architecture, batch) mix of the preset).
2. The ``cifar10_knet`` schedule (KNet at full width, 3x32x32 inputs, a
   256-example validation batch, 21 checkpoints over 20 epochs of 50,000
   images at batch 256): the median time of one training step and of one
   recording on synthetic CIFAR-shaped data, combined into the run's ratio
   ``21 * record / (20 * 195 * step)``.

Target (from the issue): recording adds less than 15 % to a run's time.

Usage::

    python lrid_benchmarks/recording_overhead.py [--quick] [--device cpu|cuda] [--threads 1] [--output PATH]

Results go to ``lrid_benchmarks/results/recording_overhead.json`` (atomic write).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lrid_analysis.atomic import write_json_atomic
from lrid_benchmarks.machine import machine
from lrid_generate.models import build_model, weight_of
from lrid_generate.presets import PRESETS
from lrid_generate.recorder import Recorder
from lrid_generate.rules import convert, local_loss, make_optimizer
from lrid_generate.tasks import Task
from lrid_generate.train import keep_freed_memory, train_network

TARGET = 0.15
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "recording_overhead.json"




def _embedded_specs(quick):
    """A spread of embedded networks: every (task, architecture) pair at batch 32 and 128."""
    specs = PRESETS["embedded"].specs()
    chosen = {}
    for spec in specs:
        if spec.model_seed is not None or spec.dataset_seed is not None:
            continue
        key = (spec.task, spec.architecture, spec.batch_size, spec.learning_rule, len(spec.conditions) > 1)
        if spec.batch_size in (32, 128) and (spec.learning_rule in ("sgdm", "information")):
            chosen.setdefault(key, spec)
    picked = list(chosen.values())
    if quick:
        picked = [s for s in picked if s.task == "digits" and s.batch_size == 128]
    return picked


def time_embedded(quick, device):
    rows = []
    for spec in _embedded_specs(quick):
        _, summary = train_network(spec, device=device)
        record = summary["record_seconds"]
        train = summary["seconds"] - record
        rows.append({
            "run_id": spec.run_id, "task": spec.task, "architecture": spec.architecture,
            "batch_size": spec.batch_size, "learning_rule": spec.learning_rule,
            "n_conditions": len(spec.conditions), "seconds": round(summary["seconds"], 3),
            "record_seconds": round(record, 3), "train_seconds": round(train, 3),
            "overhead_ratio": round(record / train, 4), "status": summary["status"],
            "train_accuracy": summary.get("train_accuracy"), "val_accuracy": summary.get("val_accuracy"),
        })
        print(f"  {spec.run_id:55s} conditions={len(spec.conditions):2d} run {summary['seconds']:6.2f} s, "
              f"recording {record:5.2f} s -> overhead {record / train:6.1%}; {summary['status']}, "
              f"train accuracy {summary.get('train_accuracy', float('nan')):.2f}", flush=True)
    return rows


def estimate_preset(rows, workers):
    """Seconds for the whole embedded preset from the measured mix (bs 64 = mean of 32 and 128)."""
    by_key = {}
    for r in rows:
        by_key.setdefault((r["task"], r["architecture"], r["n_conditions"] > 1), []).append(r["seconds"])
    preset = PRESETS["embedded"]
    total = 0.0
    for spec in preset.specs():
        times = by_key.get((spec.task, spec.architecture, len(spec.conditions) > 1)) or \
            by_key.get((spec.task, spec.architecture, False))
        if not times:
            return None
        total += float(np.mean(times))
    return total / workers


def _median_time(fn, repeats, sync):
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_cifar_schedule(quick, device):
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    g = torch.Generator().manual_seed(0)
    n = 2048
    x = torch.randn(n, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    task = Task(name="cifar_shaped", kind="supervised", x_train=x, y_train=y, x_val=x[:256], y_val=y[:256],
                n_classes=10, paper_task="cifar10").to(device)
    out = {}
    for rule in ("sgdm", "information"):
        model = convert(build_model("knet", 10, (3, 32, 32), seed=0), rule, seed=0).to(device)
        opt = make_optimizer(model, rule, 0.01, 1e-5)
        batches = list(task.epoch_batches(256, torch.Generator().manual_seed(0)))

        def step(state={"i": 0}):
            xb, yb = batches[state["i"] % len(batches)]
            state["i"] += 1
            loss = F.cross_entropy(model(xb), yb) + local_loss(model)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        recorder = Recorder(model, task.x_val, weight_of=weight_of)
        for _ in range(2):
            step()
            recorder.observe()
        repeats = 3 if quick else 7
        step_s = _median_time(lambda: [step() for _ in range(3)], repeats, sync) / 3
        record_s = _median_time(recorder.observe, repeats, sync)
        steps = 20 * (50000 // 256)
        ratio = 21 * record_s / (steps * step_s)
        out[rule] = {"step_seconds": step_s, "record_seconds": record_s, "steps_per_run": steps,
                     "overhead_ratio": ratio, "meets_target": ratio < TARGET}
        print(f"  cifar10_knet schedule, {rule:11s}: step {step_s * 1e3:7.1f} ms, recording {record_s * 1e3:7.1f} ms"
              f" -> overhead {ratio:6.2%}", flush=True)
    return out


def _write_json(path, payload):
    write_json_atomic(path, payload)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few networks and fewer repeats")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as one sweep worker)")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as sweeps run (see lrid_generate.train.keep_freed_memory)
    device = torch.device(args.device)

    print("embedded preset networks (train_network, one thread):")
    rows = time_embedded(args.quick, device)
    ratios = [r["overhead_ratio"] for r in rows]
    plain = [r["overhead_ratio"] for r in rows if r["n_conditions"] == 1]
    print("cifar10_knet schedule (synthetic CIFAR-shaped data):")
    cifar = time_cifar_schedule(args.quick, device)
    estimate = {f"{w}_workers_minutes": (None if estimate_preset(rows, w) is None else
                                         round(estimate_preset(rows, w) / 60, 1)) for w in (1, 2)}
    payload = {
        "machine": machine(device),
        "parameters": {"quick": args.quick, "threads": args.threads, "target": TARGET},
        "embedded": {
            "networks": rows,
            "median_overhead_ratio": statistics.median(ratios),
            "max_overhead_ratio_full_access": max(plain) if plain else None,
            "median_seconds_per_network": statistics.median(r["seconds"] for r in rows),
            "preset_estimate": estimate,
        },
        "cifar10_knet_schedule": cifar,
    }
    payload["summary"] = (
        f"recording adds {statistics.median(ratios):.0%} (median; max {max(ratios):.0%}) to embedded CPU runs, "
        f"{cifar['sgdm']['overhead_ratio']:.1%} (SGDM) / {cifar['information']['overhead_ratio']:.1%} (IA) "
        f"to a cifar10_knet run; target < {TARGET:.0%}"
    )
    _write_json(args.output, payload)
    print(payload["summary"])
    print(f"embedded preset estimate: {estimate}")
    return payload


if __name__ == "__main__":
    main()
