"""Sweeps: run every network of a preset that is not stored yet, on local workers.

:func:`run_sweep` expands a :class:`~lrid_generate.presets.Preset` into run
specs, keeps this process's slice of them (``shard``, e.g. one Slurm array
task's), skips the networks already stored (:mod:`lrid_generate.store`),
trains the others in packs of networks trained together
(:func:`~lrid_generate.packed.train_pack`; ``pack=1``: one at a time with
:func:`~lrid_generate.train.train_network`), one pack per worker process,
writes one shard per network, and keeps ``runs.json`` /
``sweep.json`` up to date. A failed network is reported and the sweep carries
on.

Several sweeps may share one output folder (other workers, machines, array
tasks): a network is trained only by the process that claimed it
(:mod:`lrid_generate.claims`). Workers follow their main process: when it is
killed, they stop within half a second, before writing anything more.

Reproducibility. Every network trains with the same torch thread count,
whichever process trains it (``threads``, default 1 with several workers),
so a resumed sweep writes the same bits as an uninterrupted one.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import threading
import time
import traceback
from pathlib import Path

import torch

from lrid_generate.claims import Heartbeat, live_claims, pid_alive, release, try_claim
from lrid_generate.packed import train_pack
from lrid_generate.packing import make_packs, pack_key, pack_memory
from lrid_generate.presets import SweepError, get_preset
from lrid_generate.store import (
    _check_same_spec,
    _stored_runs,
    _update_sweep_json,
    _write_runs_json,
    check_writable,
    clean_temporary,
    compact,
    drop_compacted_duplicates,
    quarantine,
    shard_path,
    verify_file,
    write_shard,
)
from lrid_generate.train import keep_freed_memory, train_network

__all__ = ["device_for_rank", "grid_packs", "parse_shard", "run_sweep", "select_shard", "shard_from_env"]

_HEARTBEAT = Heartbeat()
#: Set in pool workers: (device of this worker, main process id).
_WORKER = {}


# --------------------------------------------------------------------------- selection and placement


def parse_shard(text):
    """``"K/N"`` -> ``(K, N)`` with ``0 <= K < N`` (slice K of N, counted from 0)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if match is None:
        raise SweepError(f"--shard must look like K/N (slice K of N, K from 0), got {text!r}")
    return _check_shard(int(match.group(1)), int(match.group(2)))


def _check_shard(k, n):
    if n < 1 or not 0 <= k < n:
        raise SweepError(f"shard {k}/{n}: need N >= 1 and 0 <= K < N (K counts from 0)")
    return k, n


def shard_from_env(environ=None):
    """The slice of a Slurm array task: ``(task id - min task id, task count)``, or None outside an array.

    Reads ``SLURM_ARRAY_TASK_ID``, ``SLURM_ARRAY_TASK_COUNT`` and
    ``SLURM_ARRAY_TASK_MIN`` (default 0), so ``--array=1-10`` and
    ``--array=0-9`` both give slices 0..9 of 10.
    """
    environ = os.environ if environ is None else environ
    if "SLURM_ARRAY_TASK_ID" not in environ or "SLURM_ARRAY_TASK_COUNT" not in environ:
        return None
    try:
        task = int(environ["SLURM_ARRAY_TASK_ID"]) - int(environ.get("SLURM_ARRAY_TASK_MIN", 0))
        return _check_shard(task, int(environ["SLURM_ARRAY_TASK_COUNT"]))
    except ValueError as err:
        raise SweepError(f"cannot read the Slurm array task from the environment: {err}") from err


def select_shard(specs, shard=None):
    """Slice K of N of a list (the grid's packs): contiguous, sizes differing by at most one.

    Parameters
    ----------
    specs : list
        Run specs, or packs of them (lists of run specs).
    shard : (int, int) or None
        ``(K, N)``; None keeps every item.

    Returns
    -------
    list
    """
    if shard is None:
        return list(specs)
    k, n = _check_shard(*map(int, shard))
    return list(specs)[k * len(specs) // n:(k + 1) * len(specs) // n]


def device_for_rank(device, rank, n_gpus):
    """The device of worker ``rank``: ``cuda:{rank % n_gpus}`` for a bare ``cuda``, else ``device``.

    An explicit index (``cuda:1``) or ``cpu`` is kept.

    Examples
    --------
    >>> [device_for_rank("cuda", rank, 2) for rank in range(3)]
    ['cuda:0', 'cuda:1', 'cuda:0']
    >>> device_for_rank("cuda:3", 5, 4), device_for_rank("cpu", 1, 8)
    ('cuda:3', 'cpu')
    """
    device = str(device)
    if device != "cuda":
        return device
    if n_gpus < 1:
        raise SweepError("--device cuda asked for, but torch sees no CUDA device")
    return f"cuda:{int(rank) % int(n_gpus)}"


def grid_packs(specs, pack=None, device="cpu", workers=1, n_gpus=1, device_memory_gb=None, run_ids=None):
    """The packs of a grid: the same in every process of a sweep, however it is cut or resumed.

    Packs are fixed by the whole grid, and slices, run ids and limits take
    whole packs, so a network trains with the same pack-mates (and gives the
    same bits) in any process. Default pack sizes therefore depend only on
    the grid, ``workers``, the number of GPUs and a device *capacity* (a
    declared ``device_memory_gb``, else the GPU's total memory), never on the
    memory free when a process starts (which changes as the other workers
    allocate theirs); see :func:`~lrid_generate.packing.pack_memory`.

    Parameters
    ----------
    specs : list of RunSpec
        The whole grid.
    pack, device, workers, device_memory_gb
        As :func:`run_sweep`.
    n_gpus : int
        GPUs a bare ``cuda`` spreads the workers over.
    run_ids : collection of str, optional
        Only the packs holding these networks are needed: the other groups
        of :func:`~lrid_generate.packing.pack_key` are not sized (their
        packs are left out; the packs returned are those of the whole grid).

    Returns
    -------
    list of list of RunSpec
    """
    if run_ids is not None:
        keys = {pack_key(s) for s in specs if s.run_id in run_ids}
        specs = [s for s in specs if pack_key(s) in keys]
    memory = None
    if pack is None:
        try:
            memory = pack_memory(device, workers, n_gpus, device_memory_gb)
        except (ValueError, RuntimeError) as err:
            raise SweepError(f"cannot size packs for {device}: {err}") from err
    return make_packs(specs, pack, memory=memory, device=device)


# --------------------------------------------------------------------------- one network


def _is_stored(out, spec):
    return shard_path(out, spec).is_file() or shard_path(out, spec, diverged=True).is_file()


def _failed(spec, err):
    """The summary of a network that failed with ``err`` (called in its ``except`` block)."""
    return {"run_id": spec.run_id, "source": spec.source, "status": "failed",
            "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}


def _claim(out, spec):
    """``(claim, None)`` when this process may train ``spec``, else ``(None, summary)`` saying why not."""
    claim = try_claim(out, spec.source, spec.run_id)
    if claim is None:
        return None, {"run_id": spec.run_id, "source": spec.source, "status": "claimed"}
    if _is_stored(out, spec):  # finished by another process between our scan and the claim
        release(claim)
        return None, {"run_id": spec.run_id, "source": spec.source, "status": "skipped"}
    _HEARTBEAT.hold(claim)
    return claim, None


def _unclaim(claims):
    for claim in claims:
        _HEARTBEAT.drop(claim)
        release(claim)


def _write(out, spec, rows, summary):
    """Write a trained network's shard unless the sweep was killed meanwhile; returns its summary."""
    summary["torch_threads"] = torch.get_num_threads()
    if "main_pid" in _WORKER and not pid_alive(_WORKER["main_pid"]):
        os._exit(1)  # the sweep was killed: write nothing more
    write_shard(out, spec, rows, summary)
    return summary


def _run_and_write(spec, out, device, data_dir):
    """Train one network if no one else has or does, write its shard, return its summary (never raises)."""
    device = _WORKER.get("device", device)
    claims = []
    try:
        claim, summary = _claim(out, spec)
        if claim is None:
            return summary
        claims.append(claim)
        rows, summary = train_network(spec, device=device, data_dir=data_dir)
        return _write(out, spec, rows, summary)
    except Exception as err:  # noqa: BLE001 - report and continue with the other networks
        return _failed(spec, err)
    finally:
        _unclaim(claims)


def _run_pack_and_write(pack, wanted, out, device, data_dir):
    """Train a pack if one of its ``wanted`` networks is unclaimed, write those networks' shards (never raises).

    The whole pack trains even when some of its networks are stored or
    claimed elsewhere: a network's bits may depend on its pack-mates (packed
    kernels sum in another order), and packs are fixed by the grid, so a
    resumed or sliced sweep writes the same bits as one uninterrupted run.
    If the pack as a whole fails, its networks are trained one at a time
    instead. Returns the summaries of the ``wanted`` networks.
    """
    if len(pack) == 1:
        return [_run_and_write(pack[0], out, device, data_dir)]
    device = _WORKER.get("device", device)
    summaries, members, claims = {}, [], []
    try:
        for spec in wanted:
            claim, summary = _claim(out, spec)
            if claim is None:
                summaries[spec.run_id] = summary
            else:
                members.append(spec)
                claims.append(claim)
        if members:
            try:
                results = dict(zip((s.run_id for s in pack), train_pack(pack, device=device, data_dir=data_dir)))
            except Exception as err:  # noqa: BLE001 - e.g. a layer packing does not support: train them alone
                print(f"\npack of {len(pack)} ({pack[0].run_id}, ...) failed ({type(err).__name__}: {err}); "
                      "training its networks one at a time", file=sys.stderr)
                _unclaim(claims)
                claims = []
                for spec in members:
                    summaries[spec.run_id] = _run_and_write(spec, out, device, data_dir)
            else:
                for spec in members:
                    try:
                        summaries[spec.run_id] = _write(out, spec, *results[spec.run_id])
                    except Exception as err:  # noqa: BLE001
                        summaries[spec.run_id] = _failed(spec, err)
    except Exception as err:  # noqa: BLE001 - the networks not written yet failed together
        for spec in wanted:
            summaries.setdefault(spec.run_id, _failed(spec, err))
    finally:
        _unclaim(claims)
    return [summaries[spec.run_id] for spec in wanted]


def _follow_main(main_pid, interval=0.5):
    """Exit this worker as soon as the main process is gone (it was killed)."""
    while True:
        time.sleep(interval)
        if not pid_alive(main_pid):
            os._exit(1)


def _worker_init(threads, main_pid, device, n_gpus, counter):
    keep_freed_memory()
    torch.set_num_threads(threads)
    with counter.get_lock():
        rank = counter.value
        counter.value += 1
    _WORKER.update(device=device_for_rank(device, rank, n_gpus), main_pid=main_pid)
    threading.Thread(target=_follow_main, args=(main_pid,), name="lrid-follow-main", daemon=True).start()


def _star_run(args):
    return _run_pack_and_write(*args)


# --------------------------------------------------------------------------- the sweep


def _resolve_threads(threads, workers):
    """Torch threads of every network of this sweep: ``threads``, else 1 with workers, else torch's."""
    if threads is not None:
        if int(threads) < 1:
            raise SweepError(f"threads must be >= 1, got {threads}")
        return int(threads)
    return 1 if workers > 1 else torch.get_num_threads()


def _select_todo(specs, out):
    """The specs of ``specs`` with no intact stored network; damaged files are moved aside."""
    stored = _stored_runs(out, damaged="quarantine")
    checked = {}
    todo = []
    for spec in specs:
        found = stored.get((spec.source, spec.run_id))
        if found is not None:
            record, path = found
            _check_same_spec(spec, record, path)
            if path not in checked:
                checked[path] = verify_file(path)
                if checked[path] is not None:
                    quarantine(path, checked[path])
            if checked[path] is None:
                continue
        todo.append(spec)
    return todo


def run_sweep(preset, out, device="cpu", workers=1, limit=None, data_dir=None, threads=None, progress=True,
              compact_when_done=None, shard=None, run_ids=None, pack=None, device_memory_gb=None):
    """Run every network of a preset (or of a slice of it) that is not stored under ``out`` yet.

    Parameters
    ----------
    preset : str or Preset
    out : str or Path
        Output folder (created).
    device : str
        ``cpu``, ``cuda`` (worker ``r`` of a multi-GPU machine gets
        ``cuda:{r % n_gpus}``, see :func:`device_for_rank`) or ``cuda:<i>``.
    workers : int
        Networks trained at once, each in its own process.
    limit : int, optional
        Run the missing networks of whole packs, in grid order, until at
        least this many are run.
    data_dir : str or Path, optional
        Local datasets (Fashion-MNIST, CIFAR-10).
    threads : int, optional
        Torch threads of every network (default 1 when ``workers > 1``, else
        torch's choice). The same in every process, so results do not depend
        on which process trained a network.
    progress : bool
        Show a tqdm bar (networks done, time left).
    compact_when_done : bool, optional
        Run :func:`compact` once every network of the preset is stored
        (default: the preset's ``compact`` for a whole-grid run, no for a
        slice, whose compaction is :func:`~lrid_generate.store.finalize`'s).
    shard : (int, int), optional
        ``(K, N)``: train only slice K of N of the grid's packs
        (:func:`select_shard`).
    run_ids : collection of str, optional
        Train only the packs holding these networks (an array task's).
    pack : int, optional
        Networks trained together as one packed model
        (:func:`~lrid_generate.packed.train_pack`; same results as one at a
        time); default :func:`~lrid_generate.packing.default_pack_size` of
        the model (16 for the ``embedded`` networks). ``1`` trains one
        network at a time. Each network still gets its own shard. On CUDA
        the default is sized for the device (:func:`grid_packs`).
    device_memory_gb : float, optional
        Memory of one device in GiB that default packs are sized for
        (:func:`~lrid_generate.packing.pack_memory`); default on CUDA the
        GPU's total memory, on the CPU none (packs by model size alone).
        Declare it when the machines running one grid differ.

    Returns
    -------
    dict
        Counts: ``total`` (grid size), ``selected`` (this slice), ``skipped``
        (already done), ``complete``, ``diverged``, ``failed``, ``claimed``
        (left to another process training them), ``missing`` (networks of
        the grid still to run) and ``failures`` (run id -> error).
    """
    from tqdm.auto import tqdm

    preset = get_preset(preset)
    out = Path(out)
    device = str(device)
    if workers < 1:
        raise SweepError(f"workers must be >= 1, got {workers}")
    n_gpus = torch.cuda.device_count() if device.startswith("cuda") else 0
    if device.startswith("cuda") and n_gpus == 0:
        raise SweepError("--device cuda asked for, but torch sees no CUDA device")
    threads = _resolve_threads(threads, workers)
    check_writable(out)
    clean_temporary(out, live=live_claims(out))
    drop_compacted_duplicates(out)
    specs = preset.specs()
    wanted = None if run_ids is None else set(run_ids)
    if wanted is not None:
        unknown = sorted(wanted - {s.run_id for s in specs})
        if unknown:
            raise SweepError(f"preset {preset.name!r} has no network(s) {', '.join(unknown)}")
    # packs are fixed by the whole grid (grid_packs), slices and run ids take whole packs
    packs = grid_packs(specs, pack, device, workers, n_gpus, device_memory_gb,
                       run_ids=wanted if shard is None else None)
    packs = select_shard(packs, shard)
    if wanted is not None:
        packs = [members for members in packs if any(s.run_id in wanted for s in members)]
    selected = [s for members in packs for s in members]
    missing = {s.run_id for s in _select_todo(selected, out)}
    work = [(members, [s for s in members if s.run_id in missing]) for members in packs]
    work = [(members, todo) for members, todo in work if todo]
    skipped = len(selected) - len(missing)
    if limit is not None:
        kept, n = [], 0
        for members, todo in work:
            if n >= int(limit):
                break
            kept.append((members, todo))
            n += len(todo)
        work = kept
    todo = [s for _, wanted in work for s in wanted]
    task = f"{shard[0]}/{shard[1]}" if shard is not None else None
    if run_ids is not None:
        task = f"{socket.gethostname()}:{os.getpid()}"
    _update_sweep_json(out, preset, device, workers, {"total": len(specs)}, run_ids=[s.run_id for s in specs],
                       task=task)

    counts = {"total": len(specs), "selected": len(selected), "skipped": skipped, "complete": 0, "diverged": 0,
              "failed": 0, "claimed": 0}
    failures = {}
    bar = tqdm(total=len(todo), desc=f"{preset.name}", unit="net", disable=not progress, dynamic_ncols=True)

    def note(summary):
        counts[summary["status"]] += 1
        if summary["status"] == "failed":
            failures[summary["run_id"]] = summary["error"]
            print(f"\n{summary['run_id']} failed:\n{summary['traceback']}", file=sys.stderr)
        bar.set_postfix(diverged=counts["diverged"], failed=counts["failed"], refresh=False)
        bar.update(1)

    try:
        if workers == 1 or len(work) <= 1:
            keep_freed_memory()
            previous = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                for members, wanted in work:
                    for summary in _run_pack_and_write(members, wanted, out, device_for_rank(device, 0, n_gpus),
                                                       data_dir):
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
            initargs = (threads, os.getpid(), device, n_gpus, ctx.Value("i", 0))
            with ctx.Pool(int(workers), initializer=_worker_init, initargs=initargs) as pool:
                jobs = [(members, wanted, out, device, data_dir) for members, wanted in work]
                for summaries in pool.imap_unordered(_star_run, jobs):
                    for summary in summaries:
                        note(summary)
    finally:
        bar.close()
        stored = _stored_runs(out)
        mine = [stored[(s.source, s.run_id)][0]["summary"]["status"] for s in specs if (s.source, s.run_id) in stored]
        counts["missing"] = len(specs) - len(mine)
        if compact_when_done is None:
            compact_when_done = preset.compact and shard is None and run_ids is None
        if counts["missing"] == 0 and compact_when_done:
            compact(out, source=preset.name)
        _write_runs_json(out)
        _update_sweep_json(out, preset, device, workers, {
            "total": len(specs), "complete": mine.count("complete"), "diverged": mine.count("diverged"),
            "missing": counts["missing"],
        }, task=task)
    counts["failures"] = failures
    return counts
