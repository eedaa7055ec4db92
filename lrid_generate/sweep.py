"""Sweeps: run every network of a preset that is not stored yet, on local workers.

:func:`run_sweep` expands a :class:`~lrid_generate.presets.Preset` into run
specs, skips the networks already stored (:mod:`lrid_generate.store`), trains
the others in packs of networks trained together
(:func:`~lrid_generate.packed.train_pack`; ``pack=1``: one at a time with
:func:`~lrid_generate.train.train_network`), one pack per worker process,
writes one shard per network, and keeps ``runs.json`` /
``sweep.json`` up to date. A failed network is reported and the sweep carries
on.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import pandas as pd
import torch

from lrid_generate.packed import make_packs, train_pack
from lrid_generate.presets import SweepError, get_preset
from lrid_generate.store import (
    _check_same_spec,
    _stored_runs,
    _update_sweep_json,
    _write_json,
    collect_runs,
    compact,
    write_shard,
)
from lrid_generate.train import keep_freed_memory, train_network

__all__ = ["run_sweep"]


def _failed(spec, err):
    """The summary of a network that failed with ``err`` (called in its ``except`` block)."""
    return {"run_id": spec.run_id, "source": spec.source, "status": "failed",
            "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}


def _run_and_write(spec, out, device, data_dir):
    """Worker: train one network, write its shard, return its summary (never raises)."""
    try:
        rows, summary = train_network(spec, device=device, data_dir=data_dir)
        write_shard(out, spec, rows, summary)
        return summary
    except Exception as err:  # noqa: BLE001 - report and continue with the other networks
        return _failed(spec, err)


def _run_pack_and_write(specs, out, device, data_dir):
    """Worker: train a pack, write each network's shard, return their summaries (never raises).

    If the pack as a whole fails, its networks are trained one at a time instead.
    """
    if len(specs) == 1:
        return [_run_and_write(specs[0], out, device, data_dir)]
    try:
        results = train_pack(specs, device=device, data_dir=data_dir)
    except Exception as err:  # noqa: BLE001 - e.g. a layer packing does not support: train them alone
        print(f"\npack of {len(specs)} ({specs[0].run_id}, ...) failed ({type(err).__name__}: {err}); "
              "training its networks one at a time", file=sys.stderr)
        return [_run_and_write(spec, out, device, data_dir) for spec in specs]
    summaries = []
    for spec, (rows, summary) in zip(specs, results):
        try:
            write_shard(out, spec, rows, summary)
            summaries.append(summary)
        except Exception as err:  # noqa: BLE001
            summaries.append(_failed(spec, err))
    return summaries


def _worker_init(threads):
    keep_freed_memory()
    torch.set_num_threads(threads)


def _star_run(args):
    return _run_pack_and_write(*args)


def run_sweep(preset, out, device="cpu", workers=1, limit=None, data_dir=None, threads=None, progress=True,
              compact_when_done=None, pack=None):
    """Run every network of a preset that is not stored under ``out`` yet.

    Parameters
    ----------
    preset : str or Preset
    out : str or Path
        Output folder (created).
    device : str
        ``cpu`` or ``cuda`` (data and models stay on that device).
    workers : int
        Networks trained at once, each in its own process with ``threads``
        torch threads (default 1 when ``workers > 1``).
    limit : int, optional
        Run at most this many of the missing networks.
    data_dir : str or Path, optional
        Local datasets (Fashion-MNIST, CIFAR-10).
    threads : int, optional
        Torch threads per process (default: torch's choice with one worker).
    progress : bool
        Show a tqdm bar (networks done, time left).
    compact_when_done : bool, optional
        Run :func:`compact` once every network of the preset is stored
        (default: the preset's ``compact``).
    pack : int, optional
        Networks trained together as one packed model
        (:func:`~lrid_generate.packed.train_pack`; same results as one at a
        time); default :func:`~lrid_generate.packed.default_pack_size` of
        the model (16 for the ``embedded`` networks). ``1`` trains one
        network at a time. Each network still gets its own shard.

    Returns
    -------
    dict
        Counts: ``total``, ``skipped`` (already done), ``complete``,
        ``diverged``, ``failed``, ``missing`` (still to run), and
        ``failures`` (run id -> error).
    """
    from tqdm.auto import tqdm

    preset = get_preset(preset)
    out = Path(out)
    device = str(device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SweepError("--device cuda asked for, but torch sees no CUDA device")
    if workers < 1:
        raise SweepError(f"workers must be >= 1, got {workers}")
    specs = preset.specs()
    stored = _stored_runs(out)
    todo = []
    for spec in specs:
        found = stored.get((spec.source, spec.run_id))
        if found is None:
            todo.append(spec)
        else:
            _check_same_spec(spec, *found)
    skipped = len(specs) - len(todo)
    if limit is not None:
        todo = todo[: int(limit)]
    _update_sweep_json(out, preset, device, workers, {"total": len(specs)})

    counts = {"total": len(specs), "skipped": skipped, "complete": 0, "diverged": 0, "failed": 0}
    failures = {}
    packs = make_packs(todo, pack)
    bar = tqdm(total=len(todo), desc=f"{preset.name}", unit="net", disable=not progress, dynamic_ncols=True)

    def note(summary):
        counts[summary["status"]] += 1
        if summary["status"] == "failed":
            failures[summary["run_id"]] = summary["error"]
            print(f"\n{summary['run_id']} failed:\n{summary['traceback']}", file=sys.stderr)
        bar.set_postfix(diverged=counts["diverged"], failed=counts["failed"], refresh=False)
        bar.update(1)

    try:
        if workers == 1 or len(packs) <= 1:
            keep_freed_memory()
            previous = torch.get_num_threads()
            if threads:
                torch.set_num_threads(int(threads))
            try:
                for members in packs:
                    for summary in _run_pack_and_write(members, out, device, data_dir):
                        note(summary)
            finally:
                torch.set_num_threads(previous)
        else:
            import multiprocessing as mp

            # forkserver (POSIX): workers fork from a clean server that imported lrid_generate once;
            # spawn elsewhere. Never plain fork: the parent's torch thread pools and CUDA state.
            if "forkserver" in mp.get_all_start_methods():
                ctx = mp.get_context("forkserver")
                ctx.set_forkserver_preload(["lrid_generate.sweep"])
            else:
                ctx = mp.get_context("spawn")
            with ctx.Pool(int(workers), initializer=_worker_init, initargs=(int(threads or 1),)) as pool:
                jobs = [(members, out, device, data_dir) for members in packs]
                for summaries in pool.imap_unordered(_star_run, jobs):
                    for summary in summaries:
                        note(summary)
    finally:
        bar.close()
        stored = _stored_runs(out)
        mine = [stored[(s.source, s.run_id)][0]["summary"]["status"] for s in specs if (s.source, s.run_id) in stored]
        counts["missing"] = len(specs) - len(mine)
        done = counts["missing"] == 0
        if done and (preset.compact if compact_when_done is None else compact_when_done):
            compact(out, source=preset.name)
        runs = collect_runs(out) if out.is_dir() else pd.DataFrame()
        if len(runs):
            _write_json(out / "runs.json", json.loads(runs.to_json(orient="records")))
        _update_sweep_json(out, preset, device, workers, {
            "total": len(specs), "complete": mine.count("complete"), "diverged": mine.count("diverged"),
            "missing": counts["missing"],
        })
    counts["failures"] = failures
    return counts
