"""Benchmark: packed GPU throughput of the cifar10_knet preset vs plain PyTorch packed training

Small networks leave a big GPU idle, so lrid runs several networks per GPU
at once (:func:`lrid_generate.sweep.run_sweep` with ``workers=K``, each
worker a process whose data stay on the device). This script measures, side
by side on the same device and for each ``K`` in ``--workers``:

1. **plain PyTorch, packed** (the baseline): ``K`` concurrent processes
   (``spawn``), each training a KNet4 with a textbook loop (cross-entropy,
   ``loss.backward()``, ``torch.optim.SGD`` with momentum 0.9, Nesterov and
   weight decay 1e-5) on a training set already on the device, batch 256,
   one random permutation per epoch. The model is
   ``lrid_generate.models.build_model("knet", 10, (3, 32, 32))`` *without*
   :func:`lrid_generate.rules.convert`: ordinary ``nn.Conv2d`` /
   ``nn.Linear`` modules with exactly lrid's KNet4 layer shapes (rather than
   a second copy of the architecture that could drift from it). Each process
   builds its model, loads the data and runs ``--plain-warmup`` untimed
   steps; then all meet at a barrier with the parent, which times ``K x
   --plain-steps`` steps until the last process has synchronised the device
   and reported: ``images_per_s = K * steps * batch / wall``.
2. **lrid, packed**: ``run_sweep(..., workers=K)`` on the same device over a
   representative slice of the ``cifar10_knet`` preset: every architecture
   (``knet``, ``knetlrn``, ``knetc4``, ``knetc4lrn``) x every rule (SGDM,
   Adam, FA, IA) x every batch size (128 / 256 / 512), one seed setting
   (seeds do not change the work), trained for ``--epochs`` epochs instead
   of 20 with the preset's checkpoint density kept (one recording per
   epoch plus the initial one), so a run takes minutes, not hours. All of it
   is timed: worker start-up, loading the data onto the device, building and
   initialising the networks, training, recording the observables, writing
   the Parquet shards. ``images_per_s = sum(steps * batch_size) / wall``
   over the networks. ``images_per_s_busy`` divides by the mean busy time
   per worker instead (each network's own training + recording seconds):
   what a long sweep approaches when start-up and the last, partly idle
   round are amortised.

``ratio = lrid / plain`` per ``K``; the headline ``ratio`` compares the best
packed throughput of each side over the ``K`` tried (plain's best is what a
packed GPU can do; lrid's best is what the preset gets with its best
``--workers``).

Target (issue #3): the whole CIFAR-10 KNet preset at no less than half of
plain PyTorch's packed throughput (``ratio >= 0.5``), recording and FA / IA
included, on a GPU. The preset mixes KNet4 and the heavier KNet5 (``knetc4``)
and batch sizes 128-512, while the baseline is KNet4 at batch 256, as in the
issue. On the CPU the numbers only check the harness.

Data: a local CIFAR-10 copy (python batches) with ``--data-dir``; otherwise a
synthetic copy in the same format (uniform random pixels and labels from a
seeded generator, ``--n-train`` training images) written to a temporary
folder. Throughput does not depend on the pixel values; learning rates are the
preset's and were not tuned for random data (the number of diverged runs, which
stop early, is reported; their steps are counted as run).

Usage::

    python lrid_benchmarks/packed_throughput.py --device cuda [--workers 1 4 8] [--epochs 2]
        [--data-dir DIR] [--plain-steps 2000] [--output PATH]
    python lrid_benchmarks/packed_throughput.py --quick          # CPU, tiny: checks the harness

Results go to ``lrid_benchmarks/results/packed_throughput.json`` (atomic write).
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import pickle
import queue as queue_module
import shutil
import tempfile
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from lrid_analysis.atomic import write_json_atomic
from lrid_benchmarks.machine import machine

__all__ = ["TARGET", "DEFAULT_OUTPUT", "write_synthetic_cifar10", "benchmark_preset", "plain_packed_throughput",
           "lrid_packed_throughput", "run_packed_benchmark", "main"]

#: lrid's packed throughput must reach this fraction of plain PyTorch's.
TARGET = 0.5
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "packed_throughput.json"
PRESET = "cifar10_knet"
#: The baseline architecture (KNet4, as in the issue) and its weight decay (lrid's KNet value).
PLAIN_ARCHITECTURE = "knet"
PLAIN_LR, PLAIN_MOMENTUM, PLAIN_WEIGHT_DECAY = 0.01, 0.9, 1e-5
CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)

#: Settings of the full run and of ``--quick`` (tiny, CPU, under a minute on 2 cores).
DEFAULTS = {"n_train": 50000, "n_test": 1000, "epochs": 2, "batch_sizes": (128, 256, 512), "plain_batch": 256,
            "plain_steps": 2000, "plain_warmup": 50, "width": 1.0, "n_val": 256}
QUICK = {"n_train": 640, "n_test": 64, "epochs": 1, "batch_sizes": (64,), "plain_batch": 64,
         "plain_steps": 40, "plain_warmup": 3, "width": 0.25, "n_val": 32}


# --------------------------------------------------------------------------- data


def write_synthetic_cifar10(folder, n_train=50000, n_test=1000, seed=0):
    """Write a CIFAR-10-shaped copy in the python-batch format (random pixels and labels).

    Parameters
    ----------
    folder : str or Path
        Created; receives ``data_batch_1`` .. ``data_batch_5`` and ``test_batch``.
    n_train : int
        Training images, split over the five batches (a multiple of 5).
    n_test : int
        Images in ``test_batch`` (the validation batch is taken from them).
    seed : int
        Seed of the generator drawing pixels (uint8, uniform) and labels (0-9).

    Returns
    -------
    Path
        ``folder``, readable by :func:`lrid_generate.datasets.load_cifar10`.
    """
    n_train, n_test = int(n_train), int(n_test)
    if n_train < 5 or n_train % 5:
        raise ValueError(f"n_train must be a positive multiple of 5 (five data batches), got {n_train}")
    if n_test < 1:
        raise ValueError(f"n_test must be >= 1, got {n_test}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sizes = [n_train // 5] * 5 + [n_test]
    for name, n in zip(CIFAR_FILES, sizes):
        batch = {b"batch_label": name.encode(), b"labels": rng.integers(0, 10, size=n).tolist(),
                 b"data": rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)}
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle, protocol=2)
    return folder


# --------------------------------------------------------------------------- plain PyTorch, packed


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _plain_worker(rank, device, data_dir, batch, steps, warmup, width, threads, seed, barrier, results, timeout):
    """One baseline process: build, load, warm up, wait at the barrier, run ``steps`` timed steps."""
    import torch.nn.functional as F

    from lrid_generate.models import build_model
    from lrid_generate.datasets import load_cifar10

    try:
        torch.set_num_threads(int(threads))
        device = torch.device(device)
        x_np, y_np, _, _ = load_cifar10(data_dir, n_val=1)
        x = torch.from_numpy(x_np).to(device)
        y = torch.from_numpy(y_np).to(device)
        n = x.shape[0]
        if batch > n:
            raise ValueError(f"plain batch {batch} exceeds the {n} training images in {data_dir}")
        model = build_model(PLAIN_ARCHITECTURE, 10, (3, 32, 32), width=width, seed=seed + rank).to(device)
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=PLAIN_LR, momentum=PLAIN_MOMENTUM, nesterov=True,
                                    weight_decay=PLAIN_WEIGHT_DECAY)
        generator = torch.Generator(device=device).manual_seed(seed + rank)
        per_epoch = n // batch
        state = {"order": None, "i": per_epoch}

        def step():
            if state["i"] == per_epoch:
                state["order"] = torch.randperm(n, device=device, generator=generator)
                state["i"] = 0
            index = state["order"][state["i"] * batch:(state["i"] + 1) * batch]
            state["i"] += 1
            loss = F.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return loss

        for _ in range(warmup):
            step()
        _sync(device)
        barrier.wait(timeout=timeout)
        start = time.perf_counter()
        for _ in range(steps):
            loss = step()
        _sync(device)
        seconds = time.perf_counter() - start
        results.put({"rank": rank, "steps": steps, "seconds": seconds, "final_loss": float(loss.detach())})
    except BaseException as err:  # noqa: BLE001 - reported to the parent, which raises
        barrier.abort()
        results.put({"rank": rank, "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()})


def plain_packed_throughput(workers, device, data_dir, batch=256, steps=2000, warmup=50, width=1.0, threads=1,
                            seed=0, timeout=600.0):
    """Aggregate images/s of ``workers`` concurrent plain-PyTorch KNet4 trainings on one device.

    Parameters
    ----------
    workers : int
        Concurrent processes (``spawn``), one network each.
    device : str
        ``cpu`` or ``cuda`` (every process uses it).
    data_dir : str or Path
        CIFAR-10 python batches (real or :func:`write_synthetic_cifar10`).
    batch, steps, warmup : int
        Batch size, timed steps and untimed warm-up steps per process.
    width : float
        KNet width multiplier.
    threads : int
        Torch CPU threads per process.
    seed : int
        Process ``r`` initialises with ``seed + r`` and orders its data with it.
    timeout : float
        Seconds to wait for the processes to get ready and to finish.

    Returns
    -------
    dict
        ``workers``, ``images``, ``wall_seconds`` (barrier release to the last
        report), ``images_per_s`` (``images / wall_seconds``),
        ``per_process_images_per_s`` (each process's own steps over its own
        time) and ``final_losses``.

    Raises
    ------
    RuntimeError
        Naming the process that failed and its error.
    """
    workers, batch, steps, warmup = int(workers), int(batch), int(steps), int(warmup)
    if workers < 1 or batch < 1 or steps < 1 or warmup < 0:
        raise ValueError(f"need workers, batch, steps >= 1 and warmup >= 0; got {workers}, {batch}, {steps}, "
                         f"{warmup}")
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(workers + 1)
    results = ctx.Queue()
    processes = [ctx.Process(target=_plain_worker, daemon=True,
                             args=(rank, str(device), str(data_dir), batch, steps, warmup, float(width), int(threads),
                                   int(seed), barrier, results, float(timeout)))
                 for rank in range(workers)]
    for process in processes:
        process.start()
    reports = []
    try:
        try:
            barrier.wait(timeout=timeout)
            start = time.perf_counter()
        except threading.BrokenBarrierError:
            start = None
        deadline = time.monotonic() + timeout
        while start is not None and len(reports) < workers and time.monotonic() < deadline:
            try:
                reports.append(results.get(timeout=1.0))
            except queue_module.Empty:
                reported = {r["rank"] for r in reports}
                dead = [rank for rank, p in enumerate(processes)
                        if rank not in reported and p.exitcode not in (None, 0)]
                if dead:  # killed without a report (e.g. out of memory)
                    reports.append({"rank": dead[0], "error": f"exit code {processes[dead[0]].exitcode}",
                                    "traceback": ""})
                    break
                continue
            if "error" in reports[-1]:
                break
        if start is None:  # a process failed before the barrier: collect its report
            try:
                reports.append(results.get(timeout=10))
            except queue_module.Empty:
                pass
        wall = time.perf_counter() - start if start is not None else None
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join()
    errors = [r for r in reports if "error" in r]
    if errors:
        raise RuntimeError(f"plain PyTorch process {errors[0]['rank']} failed: {errors[0]['error']}\n"
                           f"{errors[0]['traceback']}")
    if start is None or len(reports) < workers:
        raise RuntimeError(f"plain PyTorch processes did not {'get ready' if start is None else 'finish'} within "
                           f"{timeout} s ({len(reports)} of {workers} reported)")
    images = workers * steps * batch
    return {
        "workers": workers, "batch_size": batch, "steps_per_process": steps, "images": images,
        "wall_seconds": wall, "images_per_s": images / wall,
        "per_process_images_per_s": [steps * batch / r["seconds"] for r in sorted(reports, key=lambda r: r["rank"])],
        "final_losses": [r["final_loss"] for r in sorted(reports, key=lambda r: r["rank"])],
    }


# --------------------------------------------------------------------------- lrid, packed


def benchmark_preset(epochs=2, batch_sizes=None, architectures=None, rules=None, width=None, n_val=None):
    """The slice of the ``cifar10_knet`` preset that is timed.

    Every architecture x rule x batch size of the preset (or the subsets
    given), one seed setting (model and dataset seed ``None``), ``epochs``
    epochs instead of the preset's, and the preset's checkpoint density: it
    records ``n_checkpoints - 1`` times over ``epochs_preset`` epochs, so here
    ``1 + round((n_checkpoints - 1) * epochs / epochs_preset)`` checkpoints
    (at least 2).

    Returns
    -------
    lrid_generate.presets.Preset
        Named ``cifar10_knet_packed``.
    """
    from lrid_generate.presets import PRESETS

    base = PRESETS[PRESET]
    epochs = int(epochs)
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    for name, chosen, allowed in (("architectures", architectures, base.architectures), ("rules", rules, base.rules)):
        unknown = sorted(set(chosen or ()) - set(allowed))
        if unknown:
            raise ValueError(f"{name} {unknown} are not in the {PRESET} preset ({', '.join(allowed)})")
    intervals = max(1, round((base.n_checkpoints - 1) * epochs / base.epochs))
    return dataclasses.replace(
        base, name=f"{PRESET}_packed",
        description=f"throughput slice of {PRESET}: {epochs} epoch(s), one seed setting",
        architectures=tuple(architectures or base.architectures), rules=tuple(rules or base.rules),
        batch_sizes=tuple(int(b) for b in (batch_sizes or base.batch_sizes)),
        model_seeds=(None,), dataset_seeds=(None,), epochs=epochs, n_checkpoints=1 + intervals,
        width=base.width if width is None else float(width), n_val=base.n_val if n_val is None else int(n_val),
        compact=False,
    )


def lrid_packed_throughput(preset, workers, device, data_dir, out, threads=1, progress=False):
    """Images/s of ``run_sweep(preset, workers=workers)`` on one device, everything included.

    Parameters
    ----------
    preset : lrid_generate.presets.Preset
    workers : int
    device : str
    data_dir : str or Path
        CIFAR-10 python batches.
    out : str or Path
        An empty folder for the sweep's shards (a folder holding the
        networks already would be skipped by the sweep's resume logic).
    threads : int
        Torch CPU threads per worker.
    progress : bool
        Show the sweep's progress bar.

    Returns
    -------
    dict
        ``networks``, ``complete``, ``diverged``, ``images`` (sum of
        ``steps * batch_size``), ``wall_seconds``, ``images_per_s``,
        ``busy_seconds`` (sum of the networks' own seconds),
        ``images_per_s_busy`` (``images`` over ``busy_seconds / min(workers,
        networks)``), ``record_fraction`` (recording's share of the busy time).

    Raises
    ------
    RuntimeError
        When a network fails (its error is named) or ``out`` is not empty.
    """
    from lrid_generate.store import collect_runs
    from lrid_generate.sweep import run_sweep

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise RuntimeError(f"{out} is not empty: the sweep would skip the networks stored there")
    start = time.perf_counter()
    counts = run_sweep(preset, out, device=device, workers=int(workers), data_dir=data_dir, threads=int(threads),
                       progress=progress, compact_when_done=False)
    wall = time.perf_counter() - start
    if counts["failed"] or counts["missing"]:
        first = next(iter(counts["failures"].items()), ("?", "missing networks"))
        raise RuntimeError(f"lrid sweep with {workers} worker(s): {counts['failed']} failed, {counts['missing']} "
                           f"missing; {first[0]}: {first[1]}")
    runs = collect_runs(out)
    images = int((runs["steps"].astype("int64") * runs["batch_size"].astype("int64")).sum())
    busy = float(runs["seconds"].astype(float).sum())
    active = min(int(workers), len(runs))
    return {
        "workers": int(workers), "networks": int(len(runs)),
        "complete": int((runs["status"] == "complete").sum()), "diverged": int((runs["status"] == "diverged").sum()),
        "images": images, "wall_seconds": wall, "images_per_s": images / wall,
        "busy_seconds": busy, "images_per_s_busy": images / (busy / active),
        "record_fraction": float(runs["record_seconds"].astype(float).sum()) / busy,
    }


# --------------------------------------------------------------------------- the benchmark


def run_packed_benchmark(device="cpu", workers=(1, 2), output=DEFAULT_OUTPUT, data_dir=None, quick=False,
                         n_train=None, n_test=None, epochs=None, batch_sizes=None, architectures=None, rules=None,
                         width=None, n_val=None, plain_batch=None, plain_steps=None, plain_warmup=None, threads=1,
                         seed=0, timeout=600.0, progress=False, verbose=True):
    """Measure both sides for every ``K`` in ``workers`` and write the result document.

    Settings left ``None`` take :data:`DEFAULTS` (or :data:`QUICK` with
    ``quick``). ``data_dir=None`` writes a synthetic CIFAR-10 copy (seed
    ``seed``) to a temporary folder, removed at the end with the sweeps'
    output.

    Returns
    -------
    dict
        The document written to ``output``: ``machine``, ``parameters``,
        ``results`` (per ``K``: ``plain``, ``lrid``, ``ratio``,
        ``meets_target``), best ``plain_images_per_s`` /
        ``lrid_images_per_s`` over ``K``, their ``ratio``, ``meets_target``
        and a ``summary`` line.
    """
    settings = dict(QUICK if quick else DEFAULTS)
    given = {"n_train": n_train, "n_test": n_test, "epochs": epochs, "batch_sizes": batch_sizes,
             "plain_batch": plain_batch, "plain_steps": plain_steps, "plain_warmup": plain_warmup, "width": width,
             "n_val": n_val}
    settings.update({k: v for k, v in given.items() if v is not None})
    workers = [int(k) for k in workers]
    if not workers or min(workers) < 1:
        raise ValueError(f"workers must be positive integers, got {workers}")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but torch sees no CUDA device")
    preset = benchmark_preset(settings["epochs"], settings["batch_sizes"], architectures, rules, settings["width"],
                              settings["n_val"])
    n_networks = len(preset.specs())
    scratch = Path(tempfile.mkdtemp(prefix="lrid_packed_"))
    try:
        if data_dir is None:
            data = write_synthetic_cifar10(scratch / "cifar-10-batches-py", settings["n_train"],
                                           max(settings["n_test"], settings["n_val"]), seed=seed)
            data_source = {"kind": "synthetic", "n_train": settings["n_train"],
                           "n_test": max(settings["n_test"], settings["n_val"]), "seed": seed}
        else:
            data = Path(data_dir)
            data_source = {"kind": "local CIFAR-10", "data_dir": str(data)}
        results = {}
        for k in workers:
            if verbose:
                print(f"K={k}: plain PyTorch, {k} process(es) x {settings['plain_steps']} steps of KNet4 at batch "
                      f"{settings['plain_batch']} ...", flush=True)
            plain = plain_packed_throughput(k, str(device), data, settings["plain_batch"], settings["plain_steps"],
                                            settings["plain_warmup"], settings["width"], threads, seed, timeout)
            if verbose:
                print(f"  plain: {plain['images_per_s']:,.0f} images/s", flush=True)
                print(f"K={k}: lrid run_sweep, {n_networks} networks, {k} worker(s) ...", flush=True)
            lrid = lrid_packed_throughput(preset, k, str(device), data, scratch / f"sweep_K{k}", threads, progress)
            ratio = lrid["images_per_s"] / plain["images_per_s"]
            results[str(k)] = {"plain": plain, "lrid": lrid, "ratio": ratio, "meets_target": ratio >= TARGET}
            if verbose:
                print(f"  lrid:  {lrid['images_per_s']:,.0f} images/s (busy-time estimate "
                      f"{lrid['images_per_s_busy']:,.0f}; recording {lrid['record_fraction']:.0%} of busy time, "
                      f"{lrid['diverged']} diverged) -> ratio {ratio:.3f}", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    best_plain = max(r["plain"]["images_per_s"] for r in results.values())
    best_lrid = max(r["lrid"]["images_per_s"] for r in results.values())
    ratio = best_lrid / best_plain
    k_plain = max(results, key=lambda k: results[k]["plain"]["images_per_s"])
    k_lrid = max(results, key=lambda k: results[k]["lrid"]["images_per_s"])
    summary = (f"lrid packs the {PRESET} slice ({n_networks} networks, recording and FA/IA included) at "
               f"{best_lrid:,.0f} images/s (K={k_lrid}) vs plain PyTorch KNet4 at {best_plain:,.0f} images/s "
               f"(K={k_plain}): ratio {ratio:.2f}, target >= {TARGET}")
    if device.type != "cuda":
        summary += (" (CPU run: the target is a GPU target; CPU numbers only check the harness"
                    + (", quick mode" if quick else "") + ")")
    document = {
        "machine": machine(device),
        "parameters": {
            "quick": bool(quick), "device": str(device), "workers": workers, "threads": int(threads),
            "seed": int(seed), "target": TARGET, "data": data_source,
            "plain": {"architecture": PLAIN_ARCHITECTURE, "width": settings["width"],
                      "batch_size": settings["plain_batch"], "steps": settings["plain_steps"],
                      "warmup": settings["plain_warmup"], "optimizer": "SGD", "lr": PLAIN_LR,
                      "momentum": PLAIN_MOMENTUM, "nesterov": True, "weight_decay": PLAIN_WEIGHT_DECAY},
            "lrid": {"preset": preset.to_dict(), "networks": n_networks, "derived_from": PRESET},
        },
        "results": results,
        "plain_images_per_s": best_plain,
        "lrid_images_per_s": best_lrid,
        "ratio": ratio,
        "meets_target": ratio >= TARGET,
        "summary": summary,
    }
    write_json_atomic(output, document)
    if verbose:
        print(summary)
        print(f"written: {output}")
    return document


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="tiny run on the CPU (K=1,2, 640 images, width 0.25): checks the harness in < 1 min")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available, cpu with --quick)")
    parser.add_argument("--workers", type=int, nargs="+", default=None, metavar="K",
                        help="processes per device to try (default 1 4 8 on cuda, 1 2 on cpu)")
    parser.add_argument("--data-dir", default=None,
                        help="local CIFAR-10 python batches (default: a synthetic copy in a temporary folder)")
    parser.add_argument("--n-train", type=int, default=None, help="synthetic training images (default 50000)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per lrid network (default 2)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None,
                        help="lrid batch sizes (default the preset's: 128 256 512)")
    parser.add_argument("--architectures", nargs="+", default=None, help="subset of the preset's architectures")
    parser.add_argument("--rules", nargs="+", default=None, help="subset of the preset's rules")
    parser.add_argument("--width", type=float, default=None, help="width multiplier, both sides (default 1)")
    parser.add_argument("--plain-batch", type=int, default=None, help="baseline batch size (default 256)")
    parser.add_argument("--plain-steps", type=int, default=None, help="timed steps per baseline process (default 2000)")
    parser.add_argument("--plain-warmup", type=int, default=None, help="untimed warm-up steps (default 50)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per process (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the baseline processes")
    parser.add_argument("--no-progress", action="store_true", help="hide the sweeps' progress bars")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT))
    args = parser.parse_args(argv)
    device = args.device or ("cpu" if args.quick or not torch.cuda.is_available() else "cuda")
    if args.quick and device.startswith("cuda"):
        print("note: --quick with --device cuda runs the tiny settings on the GPU")
    if not args.quick and device == "cpu":
        print("note: the full settings (50,000 images, 48 networks at full width) take long on the CPU, "
              "and the target is a GPU target; --quick checks the harness")
    workers = args.workers or ([1, 4, 8] if device.startswith("cuda") else [1, 2])
    torch.set_num_threads(args.threads)
    return run_packed_benchmark(
        device=device, workers=workers, output=args.output, data_dir=args.data_dir, quick=args.quick,
        n_train=args.n_train, epochs=args.epochs, batch_sizes=args.batch_sizes, architectures=args.architectures,
        rules=args.rules, width=args.width, plain_batch=args.plain_batch, plain_steps=args.plain_steps,
        plain_warmup=args.plain_warmup, threads=args.threads, seed=args.seed, timeout=args.timeout,
        progress=not args.no_progress)


if __name__ == "__main__":
    main()
