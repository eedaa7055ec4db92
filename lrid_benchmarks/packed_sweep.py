"""Benchmark: networks per hour of packed sweeps (K networks per step) vs one network at a time

Both sides run :func:`lrid_generate.sweep.run_sweep` on the same slice of a
preset, on the same device, with the same number of worker processes, into
fresh output folders, everything included (building the networks, training,
recording every observable and noise-grid condition, writing the shards):

* **packed**: ``run_sweep(..., pack=None)``, the default packing
  (:func:`lrid_generate.packed.default_pack_size`);
* **one at a time**: ``run_sweep(..., pack=1)``, the sweep before packing.

``ratio = packed networks/hour / one-at-a-time networks/hour``. On the CPU
the machine may be shared, so the rate is computed from CPU time as well as
wall time: ``networks_per_hour_cpu = cores * 3600 / mean CPU seconds per
network`` with each network's ``cpu_seconds`` (its process's CPU time, a
pack's shared equally) and ``cores = workers`` (one torch thread each); the
headline ratio uses the CPU-time rates on the CPU and wall time on a GPU.
``record_overhead`` is recording time over the rest of the networks' time
(``record / (seconds - record)``, the definition of
``recording_overhead.py``) in each path.

CPU (target >= 3x): the ``embedded`` preset, its first ``--limit`` networks
(default 48: on the v2 grid, digits x ResNet-18 x batch 32/64/128 x 4 rules
x 4 seed settings, the 24 FA / IA networks with the 25-condition noise grid),
``--workers 2``. GPU (``--device cuda``, target >= 10x on KNet-sized
networks): a slice of ``cifar10_knet`` (KNet4, 4 rules, batch 256, the 4 seed
settings; ``--epochs`` epochs on a synthetic CIFAR-10 copy, see
``packed_throughput.py``), one worker, then the ``packed_throughput``
comparison against plain PyTorch (target >= 0.5 of its packed images/s).

Usage::

    python lrid_benchmarks/packed_sweep.py                    # CPU, embedded --limit 48, 2 workers
    python lrid_benchmarks/packed_sweep.py --limit 16         # a smaller slice
    python lrid_benchmarks/packed_sweep.py --device cuda      # GPU: both ratios, one command
    python lrid_benchmarks/packed_sweep.py --quick            # tiny, CPU: checks the CPU comparison's code
    python lrid_benchmarks/packed_sweep.py --quick --gpu-path # tiny, CPU: checks the GPU command's code

Results go to ``lrid_benchmarks/results/packed_sweep.json`` (or
``packed_sweep_gpu.json``; atomic writes).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from lrid_analysis.atomic import write_json_atomic
from lrid_benchmarks.machine import machine

RESULTS = Path(__file__).resolve().parent / "results"
CPU_TARGET = 3.0
GPU_TARGET = 10.0


def measure_sweep(preset, out, device="cpu", workers=1, pack=None, limit=None, data_dir=None, threads=1):
    """Run one sweep into an empty folder and time it.

    Returns
    -------
    dict
        ``networks``, ``complete``, ``diverged``, ``wall_seconds``,
        ``cpu_seconds`` (sum over networks), ``record_seconds``,
        ``busy_seconds`` (sum of the networks' ``seconds``),
        ``networks_per_hour_wall``, ``networks_per_hour_cpu``,
        ``record_overhead``, ``pack_sizes`` (networks per pack size).

    Raises
    ------
    RuntimeError
        When a network fails or ``out`` is not empty.
    """
    from lrid_generate.store import collect_runs
    from lrid_generate.sweep import run_sweep

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise RuntimeError(f"{out} is not empty: the sweep would skip the networks stored there")
    start = time.perf_counter()
    counts = run_sweep(preset, out, device=device, workers=int(workers), limit=limit, data_dir=data_dir,
                       threads=int(threads), progress=False, compact_when_done=False, pack=pack)
    wall = time.perf_counter() - start
    if counts["failed"]:
        raise RuntimeError(f"{counts['failed']} network(s) failed: {counts['failures']}")
    runs = collect_runs(out)
    n = len(runs)
    cpu = float(runs["cpu_seconds"].astype(float).sum())
    busy = float(runs["seconds"].astype(float).sum())
    record = float(runs["record_seconds"].astype(float).sum())
    sizes = runs["pack_size"].fillna(1).astype(int) if "pack_size" in runs else runs["status"].map(lambda _: 1)
    return {
        "networks": n, "complete": int((runs["status"] == "complete").sum()),
        "diverged": int((runs["status"] == "diverged").sum()),
        "wall_seconds": wall, "cpu_seconds": cpu, "busy_seconds": busy, "record_seconds": record,
        "networks_per_hour_wall": 3600.0 * n / wall,
        "networks_per_hour_cpu": int(workers) * int(threads) * 3600.0 * n / cpu,
        "record_overhead": record / max(busy - record, 1e-12),
        "pack_sizes": {str(k): int(v) for k, v in sizes.value_counts().sort_index().items()},
    }


def compare(preset, device, workers, limit=None, data_dir=None, pack=None, scratch=None, verbose=True):
    """Packed and one-at-a-time sweeps of the same slice; ``ratio`` of their networks per hour."""
    scratch = Path(scratch or tempfile.mkdtemp(prefix="lrid_pack_"))
    sides = {}
    for name, size in (("one_at_a_time", 1), ("packed", pack)):
        if verbose:
            print(f"{name}: {preset.name}, limit {limit}, {workers} worker(s), {device} ...", flush=True)
        sides[name] = measure_sweep(preset, scratch / name, device, workers, size, limit, data_dir)
        if verbose:
            s = sides[name]
            print(f"  {s['networks']} networks: {s['wall_seconds']:.1f} s wall, {s['cpu_seconds']:.1f} s CPU, "
                  f"{s['networks_per_hour_cpu']:,.0f} networks/h (CPU time), {s['networks_per_hour_wall']:,.0f} "
                  f"networks/h (wall), recording overhead {s['record_overhead']:.0%}", flush=True)
    key = "networks_per_hour_cpu" if torch.device(device).type == "cpu" else "networks_per_hour_wall"
    return {**sides, "rate": key, "ratio": sides["packed"][key] / sides["one_at_a_time"][key],
            "ratio_wall": sides["packed"]["networks_per_hour_wall"] / sides["one_at_a_time"]["networks_per_hour_wall"]}


def gpu_slice(quick=False, epochs=1):
    """The KNet-sized ``cifar10_knet`` slice of the GPU comparison (16 networks; quick: 4 small ones)."""
    from lrid_benchmarks.packed_throughput import benchmark_preset

    preset = benchmark_preset(epochs=epochs, batch_sizes=(64,) if quick else (256,), architectures=("knet",),
                              width=0.25 if quick else 1.0, n_val=32 if quick else 256)
    seeds = (None,) if quick else (None, 0)
    return dataclasses.replace(preset, model_seeds=seeds, dataset_seeds=seeds,
                               rules=("sgdm", "adam") if quick else preset.rules)


def run(device="cpu", limit=None, workers=None, quick=False, epochs=1, data_dir=None, output=None, gpu_path=False,
        verbose=True):
    """The benchmark for ``device``; writes and returns the result document.

    ``gpu_path`` runs the GPU comparison (KNet slice and ``packed_throughput``)
    on any device, e.g. to check it on the CPU with ``quick``.
    """
    from lrid_generate.presets import get_preset

    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but torch sees no CUDA device")
    gpu_mode = device.type == "cuda" or gpu_path
    scratch = Path(tempfile.mkdtemp(prefix="lrid_pack_"))
    try:
        if not gpu_mode:
            preset = get_preset("tiny") if quick else get_preset("embedded")
            limit = None if quick else (48 if limit is None else int(limit))
            workers = int(workers or (1 if quick else 2))
            result = compare(preset, str(device), workers, limit, scratch=scratch, verbose=verbose)
            target, what = CPU_TARGET, f"{preset.name} (first {limit or len(preset.specs())} networks)"
            extra = {}
        else:
            result, extra = _gpu(device, quick, epochs, data_dir, scratch, verbose)
            target, what, workers = GPU_TARGET, "cifar10_knet KNet4 slice", 1
        rate = result["rate"].replace("networks_per_hour_", "")
        summary = (f"{what} on {device}, {workers} worker(s): packed {result['packed'][result['rate']]:,.0f} vs "
                   f"one at a time {result['one_at_a_time'][result['rate']]:,.0f} networks/h ({rate} time): "
                   f"{result['ratio']:.2f}x (wall {result['ratio_wall']:.2f}x), target >= {target:g}x; recording "
                   f"overhead packed {result['packed']['record_overhead']:.0%}")
        if quick:
            summary += " (quick mode: code-path check, not a measurement)"
        if extra:
            summary += f"; packed_throughput ratio {extra['ratio']:.2f} (target >= 0.5)"
        document = {"machine": machine(device), "parameters": {"device": str(device), "quick": bool(quick),
                                                              "limit": limit, "workers": workers,
                                                              "threads_per_worker": 1, "epochs": epochs},
                    "results": result, "meets_target": result["ratio"] >= target, "target": target,
                    "packed_throughput": extra or None, "summary": summary}
        name = "packed_sweep" + ("_gpu" if gpu_mode else "") + ("_quick" if quick else "")
        output = Path(output) if output else RESULTS / f"{name}.json"
        write_json_atomic(output, document)
        if verbose:
            print(summary)
            print(f"written: {output}")
        return document
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _gpu(device, quick, epochs, data_dir, scratch, verbose):
    """GPU mode: packed vs one at a time on the KNet slice, then ``packed_throughput``."""
    from lrid_benchmarks import packed_throughput as pt

    if data_dir is None:
        n_train = 500 if quick else 50000
        data_dir = pt.write_synthetic_cifar10(scratch / "cifar-10-batches-py", n_train, 300, seed=0)
    result = compare(gpu_slice(quick, epochs), str(device), 1, data_dir=data_dir, scratch=scratch / "sweeps",
                     verbose=verbose)
    extra = pt.run_packed_benchmark(device=str(device), workers=(1, 2) if quick else (1, 4, 8), quick=quick,
                                    output=scratch / "packed_throughput.json", verbose=verbose)
    kept = {k: extra[k] for k in ("plain_images_per_s", "lrid_images_per_s", "ratio", "meets_target", "summary")}
    return result, kept


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the code path, on the CPU too")
    parser.add_argument("--gpu-path", action="store_true",
                        help="run the GPU comparison's code (KNet slice + packed_throughput) on --device cpu")
    parser.add_argument("--limit", type=int, default=None, help="CPU: first N networks of embedded (default 48)")
    parser.add_argument("--workers", type=int, default=None, help="CPU: worker processes (default 2)")
    parser.add_argument("--epochs", type=int, default=1, help="GPU: epochs per network (default 1)")
    parser.add_argument("--data-dir", default=None, help="GPU: a local CIFAR-10 copy (default: synthetic)")
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    run(args.device, args.limit, args.workers, args.quick, args.epochs, args.data_dir, args.output, args.gpu_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
