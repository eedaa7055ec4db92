"""The output folder of a sweep: one Parquet shard per network, records, compaction.

Each network is written atomically to
``<out>/source=<preset>/task=<task>/<run_id>.parquet`` (diverged runs under
``<out>/_diverged/``, a folder the dataset loader skips, since the analysis
needs complete trajectories), so a killed sweep resumes where it stopped
without missing or repeating a network.

Records. Every shard's footer holds its network's spec, summary and the
software versions. The summaries (status, final training / validation loss
and accuracy, times) of every network are gathered in ``<out>/runs.json``;
the grid, versions and counts of each preset in ``<out>/sweep.json``.

Compaction. Once every network of a preset is stored, :func:`compact` can
merge each task folder's shards into one ``compacted.parquet`` (the
``embedded`` preset does so by default): a shipped dataset then has a few
files instead of hundreds of small ones. Resuming and the summaries work the
same on compacted folders. :func:`finalize` is the step that ends a sweep run
by several processes or array tasks: it refuses while networks are missing
(naming them), then compacts and writes the final records.

Integrity. Shards are written with Parquet page checksums; a resumed sweep
reads each stored file it relies on in full with checksum verification
(:func:`verify_file`) and moves a corrupt one aside (hidden
``.corrupt-<name>``) so that its networks are trained again. Leftover
temporary files of killed writers are removed (:func:`clean_temporary`), and a
shard left next to the compacted file that already holds its network (a
compaction killed half-way) is dropped (:func:`drop_compacted_duplicates`).

Concurrency. ``sweep.json`` is updated under an exclusive lock
(``.sweep.json.lock``, ``fcntl.flock`` where available) as a merge of what is
on disk, so sweeps of several presets or array tasks never lose each other's
entries; see :mod:`lrid_generate.claims` for who trains which network.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import platform
import shutil
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch

import lrid_generate
from lrid_analysis.atomic import write_text_atomic
from lrid_analysis.dataset import COMPRESSION_LEVELS, write_table
from lrid_generate.claims import CLAIMS_DIR
from lrid_analysis.observables import ADMISSIBLE_NAMES, KNOWN_NAMES, OBSERVABLE_NAMES
from lrid_generate.presets import DEFAULT_MODEL_SEED, PRESETS, RunSpec, SweepError
from lrid_generate.tasks import PAPER_TASKS, resolve_dataset_seed

__all__ = [
    "COMPACTED_NAME", "check_writable", "clean_temporary", "collect_runs", "compact", "drop_compacted_duplicates",
    "finalize", "shard_path", "verify_file", "versions", "write_shard",
]

RUN_METADATA_KEY = "lrid_run"
RUNS_METADATA_KEY = "lrid_runs"
#: File name of a task folder's merged shards (see :func:`compact`).
COMPACTED_NAME = "compacted.parquet"


def shard_path(out, spec, diverged=False):
    """Where a network's shard lives: ``<out>/[_diverged/]source=<s>/task=<t>/<run_id>.parquet``."""
    root = Path(out) / "_diverged" if diverged else Path(out)
    return root / f"source={spec.source}" / f"task={spec.task}" / f"{spec.run_id}.parquet"


def versions():
    """Versions of the software that generated the data."""
    return {
        "lrid": lrid_generate.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _write_json(path, data):
    """Write JSON atomically (keys sorted, one-space indent)."""
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")


def _visible_parquet(out):
    """The ``*.parquet`` files under ``out`` outside hidden folders, sorted."""
    out = Path(out)
    return [p for p in sorted(out.rglob("*.parquet"))
            if not any(part.startswith(".") for part in p.relative_to(out).parts)]


def _footer_records(path):
    """The run records in a file's footer (``{run_id: record}``; empty for other Parquet files)."""
    metadata = pq.read_schema(path).metadata or {}
    if RUNS_METADATA_KEY.encode() in metadata:
        return json.loads(metadata[RUNS_METADATA_KEY.encode()])
    if RUN_METADATA_KEY.encode() in metadata:
        record = json.loads(metadata[RUN_METADATA_KEY.encode()])
        return {RunSpec.from_dict(record["spec"]).run_id: record}
    return {}


def quarantine(path, reason):
    """Move a damaged file aside as hidden ``.corrupt-<name>`` (kept for inspection) and say so on stderr."""
    path = Path(path)
    target = path.with_name(f".corrupt-{path.name}")
    try:
        os.replace(path, target)
    except FileNotFoundError:
        return None  # another process moved it first
    print(f"warning: {path} is damaged ({reason}); moved to {target.name}, its networks will be trained again",
          file=sys.stderr)
    return target


def _stored_runs(out, damaged="raise"):
    """Every network stored under ``out``: ``{(source, run_id): (record, path)}``.

    A record is ``{"spec": ..., "summary": ..., "versions": ...}`` from a
    shard's footer (key ``lrid_run``) or from a compacted file's footer (key
    ``lrid_runs``, one record per network). Parquet files without either key
    and hidden files are ignored. A file whose footer cannot be read raises
    (``damaged="raise"``) or is moved aside with :func:`quarantine`
    (``damaged="quarantine"``, what a resuming sweep does).
    """
    out = Path(out)
    runs = {}
    if not out.is_dir():
        return runs
    for path in _visible_parquet(out):
        try:
            records = _footer_records(path)
        except FileNotFoundError:
            continue  # compacted or moved aside by another process meanwhile
        except Exception as err:  # noqa: BLE001 - name the file
            if damaged == "quarantine":
                quarantine(path, f"unreadable footer: {err}")
                continue
            raise SweepError(f"{path}: not a readable Parquet file ({err}); delete it and run again") from err
        for run, record in records.items():
            runs.setdefault((record["spec"]["source"], run), (record, path))
    return runs


def verify_file(path):
    """Read a Parquet file in full, verifying its page checksums.

    Returns
    -------
    str or None
        None when the file is intact (files written without checksums pass
        if they decode), else what is wrong.
    """
    try:
        pq.ParquetFile(path, page_checksum_verification=True).read()
    except FileNotFoundError:
        return None  # compacted by another process meanwhile: its data live on in compacted.parquet
    except Exception as err:  # noqa: BLE001 - any decoding failure means damage
        return f"{type(err).__name__}: {err}"
    return None


def _check_same_spec(spec, record, path):
    stored, current = record["spec"], spec.to_dict()
    if stored != current:
        changed = sorted(k for k in set(stored) | set(current) if stored.get(k) != current.get(k))
        raise SweepError(
            f"{path} holds {spec.run_id} trained with different settings ({', '.join(changed)} differ); "
            "use another --out folder or delete the old files"
        )


def write_shard(out, spec, rows, summary):
    """Write one network's rows atomically with its record (spec, summary, versions) in the footer.

    Pages carry checksums (verified when a sweep resumes).

    Returns
    -------
    Path
        The shard written (under ``_diverged/`` unless the run is complete).
    """
    path = shard_path(out, spec, diverged=summary["status"] != "complete")
    metadata = {RUN_METADATA_KEY: json.dumps({"spec": spec.to_dict(), "summary": summary, "versions": versions()})}
    return write_table(rows, path, metadata=metadata)


#: ``noisy_statistics`` of :func:`compact`: keep every statistic of the unit-subsampled / noisy rows, or only
#: the 24 admissible ones (and ``gradfwd``), the others stored as nulls.
NOISY_STATISTICS = ("all", "admissible")


def _preset_choice(source, attribute, value, default):
    """``value``, else the ``attribute`` of the preset named ``source``, else ``default``."""
    if value is not None:
        return value
    preset = PRESETS.get(source)
    return getattr(preset, attribute) if preset is not None else default


def _noisy_statistics(source, value):
    value = _preset_choice(source, "noisy_statistics", value, "all")
    if value not in NOISY_STATISTICS:
        raise SweepError(f"noisy_statistics must be one of {NOISY_STATISTICS}, got {value!r}")
    return value


def _noisy_mantissa_bits(source, value):
    value = _preset_choice(source, "noisy_mantissa_bits", value, None)
    if value is not None and not (isinstance(value, (int, np.integer)) and 1 <= int(value) <= 23):
        raise SweepError(f"noisy_mantissa_bits must be an integer from 1 to 23 (23: exact float32), got {value!r}")
    return None if value is None or int(value) == 23 else int(value)


def _compression_level(source, value):
    value = _preset_choice(source, "compression_level", value, None)
    if value is not None and not (isinstance(value, (int, np.integer)) and int(value) in COMPRESSION_LEVELS):
        raise SweepError(f"compression_level must be an integer from 1 to 22, got {value!r}")
    return None if value is None else int(value)


def round_mantissa(values, bits):
    """Float32 values rounded to nearest with ``bits`` of their 23 mantissa bits (ties away from zero).

    The relative error is at most ``2 ** -(bits + 1)``; zeros, NaN and
    infinities are unchanged, and a value that would round past the largest
    float32 keeps its exact value.

    Parameters
    ----------
    values : array-like of float32
    bits : int
        1 to 23.

    Returns
    -------
    ndarray of float32, the shape of ``values``

    Examples
    --------
    >>> round_mantissa(np.float32([1.0 + 2 ** -20, -3.14159265, 0.0]), 10).tolist()
    [1.0, -3.140625, 0.0]
    """
    values = np.array(values, dtype=np.float32)  # a copy
    drop = 23 - int(bits)
    if drop <= 0:
        return values
    u = values.view(np.uint32)
    finite = np.isfinite(values)
    rounded = ((u + np.uint32(1 << (drop - 1))) & np.uint32((0xFFFFFFFF << drop) & 0xFFFFFFFF)).view(np.float32)
    keep = finite & np.isfinite(rounded)
    values[keep] = rounded[keep]
    return values


def _noisy_rows(frame):
    return ~((frame["unit_fraction"] == 1.0) & (frame["noise_std"] == 0.0)).to_numpy()


def _rounded_noisy(frame, bits):
    """``frame`` with the float32 observables of its noisy / subsampled rows rounded to ``bits`` mantissa bits."""
    noisy = _noisy_rows(frame)
    if not noisy.any():
        return frame
    frame = frame.copy()
    for name in frame.columns:
        if name in KNOWN_NAMES and frame[name].dtype == np.float32:
            column = frame[name].to_numpy(copy=True)
            column[noisy] = round_mantissa(column[noisy], bits)
            frame[name] = column
    return frame


def _lean(frame):
    """``frame`` with the non-admissible statistics of its noisy / subsampled rows set to null."""
    noisy = _noisy_rows(frame)
    dropped = [n for n in OBSERVABLE_NAMES if n not in ADMISSIBLE_NAMES]
    if noisy.any():
        frame = frame.copy()
        frame.loc[noisy, dropped] = np.nan
    return frame


def compact(out, source=None, noisy_statistics=None, noisy_mantissa_bits=None, compression_level=None):
    """Merge the per-network shards of each task folder into one ``compacted.parquet``.

    Many small Parquet files carry a footer each; one file per (source, task)
    folder is much smaller for a shipped dataset. The compacted file keeps
    every network's record (spec, summary, versions) in its footer under
    ``lrid_runs``, so resuming a sweep and :func:`collect_runs` see the
    networks as before. The merged file is written atomically before the
    shards are deleted; a shard whose network is already in the compacted
    file (an interrupted compaction) is dropped, not added twice.

    Parameters
    ----------
    out : str or Path
    source : str, optional
        Only folders of this preset (``source=<name>``).
    noisy_statistics : {"all", "admissible"}, optional
        ``admissible`` stores only the 24 admissible statistics (and
        ``gradfwd``) of the rows measured with unit subsampling or noise,
        the 21 others as nulls (the unit-noise experiments use the
        admissible sets; a noise grid is most of a dataset's rows). Default:
        the ``noisy_statistics`` of the preset named by each folder's source
        (``all`` for folders of no known preset). Full-access rows are kept
        whole. Recorded in the file's metadata (``lrid_noisy_statistics``).
    noisy_mantissa_bits : int, optional
        Mantissa bits (1-23; 23 exact) kept of the float32 observables of
        those rows (:func:`round_mantissa`): noise-grid measurements compress
        poorly, and a relative error far below their noise costs nothing.
        Default: the preset's ``noisy_mantissa_bits`` (None, exact, for
        folders of no known preset). Recorded as ``lrid_noisy_mantissa_bits``.
    compression_level : int, optional
        zstd level of the compacted file (1-22; default: the preset's
        ``compression_level``, else pyarrow's). Lossless: the same rows at
        another size. Recorded as ``lrid_compression_level``.

    Returns
    -------
    list of Path
        The compacted files written.
    """
    from lrid_analysis.dataset import read_table

    if noisy_statistics is not None:
        _noisy_statistics(source, noisy_statistics)  # a bad value is an error even with nothing to compact
    if noisy_mantissa_bits is not None:
        _noisy_mantissa_bits(source, noisy_mantissa_bits)
    if compression_level is not None:
        _compression_level(source, compression_level)
    out = Path(out)
    folders = sorted({p.parent for p in _visible_parquet(out)})
    written = []
    for folder in folders:
        if source is not None and f"source={source}" not in folder.parts:
            continue
        shards = []
        for path in sorted(folder.glob("*.parquet")):
            if path.name == COMPACTED_NAME or path.name.startswith("."):
                continue
            metadata = pq.read_schema(path).metadata or {}
            if RUN_METADATA_KEY.encode() in metadata:
                shards.append((path, json.loads(metadata[RUN_METADATA_KEY.encode()])))
        if not shards:
            continue
        target = folder / COMPACTED_NAME
        frames, records = [], {}
        if target.is_file():
            frames.append(read_table(target))
            records = json.loads((pq.read_schema(target).metadata or {})[RUNS_METADATA_KEY.encode()])
        for path, record in shards:
            run = RunSpec.from_dict(record["spec"]).run_id
            if run in records:
                continue
            frames.append(read_table(path))
            records[run] = record
        frame = pd.concat(frames, ignore_index=True)
        name = next((part.split("=", 1)[1] for part in folder.parts if part.startswith("source=")), None)
        mode = _noisy_statistics(name, noisy_statistics)
        if mode == "admissible":
            frame = _lean(frame)
        bits = _noisy_mantissa_bits(name, noisy_mantissa_bits)
        if bits is not None:
            frame = _rounded_noisy(frame, bits)
        level = _compression_level(name, compression_level)
        write_table(frame, target, metadata={RUNS_METADATA_KEY: json.dumps(records, sort_keys=True),
                                             "lrid_noisy_statistics": mode,
                                             "lrid_noisy_mantissa_bits": str(23 if bits is None else bits),
                                             "lrid_compression_level": "default" if level is None else str(level)},
                    compression_level=level)
        for path, _ in shards:
            path.unlink()
        written.append(target)
    return written


def drop_compacted_duplicates(out):
    """Delete shards whose network the compacted file of their folder already holds.

    A compaction killed between writing ``compacted.parquet`` and deleting
    the shards leaves each network twice; the loader refuses repeated
    checkpoints. Only a shard whose spec equals the compacted record is
    dropped (a different spec is left for :func:`_check_same_spec` to name).

    Returns
    -------
    list of Path
        The shards deleted.
    """
    dropped = []
    for target in Path(out).rglob(COMPACTED_NAME):
        if any(part.startswith(".") for part in target.relative_to(out).parts):
            continue
        try:
            compacted = _footer_records(target)
        except Exception:  # noqa: BLE001 - damaged: the resume check quarantines it
            continue
        for path in sorted(target.parent.glob("*.parquet")):
            if path == target or path.name.startswith("."):
                continue
            try:
                records = _footer_records(path)
            except Exception:  # noqa: BLE001
                continue
            if records and all(run in compacted and compacted[run]["spec"] == r["spec"] for run, r in records.items()):
                path.unlink(missing_ok=True)
                dropped.append(path)
    return dropped


def clean_temporary(out, live=(), min_age=900.0):
    """Remove temporary files (``.*.tmp``) left under ``out`` by killed writers.

    A shard's temporary file (``.<run_id>.parquet.<hex>.tmp``) is removed
    unless its network is in ``live`` (claimed by a running process); other
    temporary files (compaction, JSON records) once older than ``min_age``
    seconds, and the leftovers of stale-claim take-overs always.

    Parameters
    ----------
    out : str or Path
    live : collection of (source, run_id)
        Networks being written right now (:func:`lrid_generate.claims.live_claims`).
    min_age : float

    Returns
    -------
    list of Path
        The files removed.
    """
    out = Path(out)
    if not out.is_dir():
        return []
    live_runs = {run for _source, run in live}
    removed = []
    now = time.time()
    for path in out.rglob(".*.tmp"):
        final = path.name[1:].rsplit(".", 2)[0]  # ".<final name>.<hex>.tmp"
        if final.endswith(".parquet") and final != COMPACTED_NAME:
            if final[: -len(".parquet")] in live_runs:
                continue
        else:
            try:
                if now - path.stat().st_mtime < min_age:
                    continue
            except FileNotFoundError:
                continue
        path.unlink(missing_ok=True)
        removed.append(path)
    for path in out.rglob(f"{CLAIMS_DIR}/*/.*.stale"):
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def check_writable(out, min_free_bytes=16 << 20):
    """Fail early, in one line, when the output folder cannot take a sweep.

    Creates the folder, writes and removes a probe file and checks the free
    space.

    Raises
    ------
    SweepError
        Read-only folder or file system, no permission, or less than
        ``min_free_bytes`` free (a full disk).
    """
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".lrid-write-probe-{uuid.uuid4().hex}"
        try:
            with open(probe, "wb") as handle:
                handle.write(b"\0" * 4096)
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            probe.unlink(missing_ok=True)
    except OSError as err:
        reason = {errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                  errno.EPERM: "permission denied", errno.ENOSPC: "no space left on device",
                  errno.EDQUOT: "disk quota exceeded", errno.ENOTDIR: "a file is in the way"}.get(err.errno,
                                                                                             err.strerror)
        raise SweepError(f"cannot write to the output folder {out}: {reason}") from err
    free = shutil.disk_usage(out).free
    if free < min_free_bytes:
        raise SweepError(f"the output folder {out} has only {free / 2**20:.1f} MiB free (no space for shards); "
                         "free some space or choose another --out")
    return out


def collect_runs(out):
    """Summaries of every network stored under ``out`` (complete and diverged).

    Returns
    -------
    pandas.DataFrame
        One row per network: the spec's fields (without the measurement
        conditions, counted in ``n_conditions``), the summary's and the file
        holding it, sorted by source and run id. ``paper_task`` is
        :data:`~lrid_generate.tasks.PAPER_TASKS` of the task name (the label
        stored in the footer for a task not in that mapping), so shards written
        under an earlier mapping report the current one.
    """
    out = Path(out)
    records = []
    for (source, run), (record, path) in sorted(_stored_runs(out).items()):
        spec = dict(record["spec"])
        n_conditions = len(spec.pop("conditions", []))
        spec["task_options"] = json.dumps(spec.get("task_options", {}), sort_keys=True)
        summary = {k: v for k, v in record["summary"].items() if k != "traceback"}
        if spec.get("task") in PAPER_TASKS:
            summary["paper_task"] = PAPER_TASKS[spec["task"]]
        records.append({**spec, **summary, "run_id": run, "n_conditions": n_conditions,
                        "path": str(path.relative_to(out))})
    return pd.DataFrame.from_records(records)



@contextlib.contextmanager
def _locked(path):
    """Hold an exclusive lock on ``path`` (created) for the block; ``fcntl.flock`` where available.

    Where ``fcntl`` is missing (Windows) an ``O_EXCL`` lock file is taken
    with retries instead (a lock older than a minute is broken).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        fcntl = None
    if fcntl is not None:
        with open(path, "a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return
    deadline = time.time() + 120  # pragma: no cover - Windows
    while True:  # pragma: no cover
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            with contextlib.suppress(FileNotFoundError):
                if time.time() - path.stat().st_mtime > 60:
                    path.unlink()
            if time.time() > deadline:
                raise SweepError(f"{path}: could not take the lock within 2 minutes; delete it if no sweep runs")
            time.sleep(0.05)
    try:  # pragma: no cover
        yield
    finally:  # pragma: no cover
        os.close(fd)
        path.unlink(missing_ok=True)


def _read_sweep_json(out):
    path = Path(out) / "sweep.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise SweepError(f"{path}: not valid JSON ({err}); delete it to start over") from err


def _update_sweep_json(out, preset, device, workers, counts, run_ids=None, task=None):
    """Merge this process's view of ``preset`` into ``sweep.json`` under the lock.

    Entries of other presets are kept, so are the ``tasks`` entries of other
    array tasks (``task``: this process's slice, e.g. ``"3/10"``).
    """
    path = Path(out) / "sweep.json"
    with _locked(Path(out) / ".sweep.json.lock"):
        data = _read_sweep_json(out)
        entry = data.get(preset.name, {})
        entry.update({
            "preset": preset.to_dict(),
            "versions": versions(),
            "device": device,
            "workers": workers,
            "networks": counts,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join(sys.argv),
            "layout": "source=<preset>/task=<task>/<run_id>.parquet; diverged runs under _diverged/",
            "seeds": {"model_seed None": DEFAULT_MODEL_SEED, "dataset_seed None": resolve_dataset_seed(None)},
        })
        if run_ids is not None:
            entry["run_ids"] = sorted(run_ids)
        if task is not None:
            entry.setdefault("tasks", {})[task] = {"host": platform.node(), "pid": os.getpid(),
                                                   "updated": entry["updated"], "networks": counts}
        data[preset.name] = entry
        _write_json(path, data)


def _write_runs_json(out):
    runs = collect_runs(out) if Path(out).is_dir() else pd.DataFrame()
    if len(runs):
        with _locked(Path(out) / ".runs.json.lock"):
            _write_json(Path(out) / "runs.json", json.loads(runs.to_json(orient="records")))


def missing_runs(out, source, stored=None):
    """Run ids of ``source`` listed in ``sweep.json`` that have no stored network yet."""
    entry = _read_sweep_json(out).get(source)
    if entry is None or "run_ids" not in entry:
        raise SweepError(f"{Path(out) / 'sweep.json'} has no grid for preset {source!r}; run the sweep first")
    stored = _stored_runs(out) if stored is None else stored
    return [run for run in entry["run_ids"] if (source, run) not in stored]


def finalize(out, source=None, compact_files=True, show=20, noisy_statistics=None, noisy_mantissa_bits=None,
             compression_level=None):
    """End a sweep run by several processes or array tasks: check, compact, write the records.

    Refuses (:class:`SweepError`) while any network of the preset(s) in
    ``sweep.json`` has no shard yet, naming them. Otherwise merges each task
    folder's shards (:func:`compact`, unless ``compact_files`` is False) and
    writes ``runs.json`` and the final counts into ``sweep.json``.

    Parameters
    ----------
    out : str or Path
    source : str, optional
        One preset; default every preset in ``sweep.json``.
    compact_files : bool
    show : int
        Missing run ids named in the error (the rest are counted).
    noisy_statistics : {"all", "admissible"}, optional
    noisy_mantissa_bits, compression_level : int, optional
        Passed to :func:`compact`.

    Returns
    -------
    dict
        Preset name -> counts (``total``, ``complete``, ``diverged``) and the
        compacted files (``compacted``).
    """
    out = Path(out)
    entries = _read_sweep_json(out)
    names = [source] if source is not None else sorted(entries)
    if not names:
        raise SweepError(f"{out}: no sweep.json with a preset; nothing to finalize")
    stored = _stored_runs(out)
    problems = []
    for name in names:
        missing = missing_runs(out, name, stored)
        if missing:
            listed = ", ".join(missing[:show]) + (f" and {len(missing) - show} more" if len(missing) > show else "")
            problems.append(f"{name}: {len(missing)} of {len(entries[name]['run_ids'])} networks have no shard "
                            f"yet ({listed})")
    if problems:
        raise SweepError("; ".join(problems) + "; run the sweep again (or wait for its tasks) before finalize")
    result = {}
    for name in names:
        written = (compact(out, source=name, noisy_statistics=noisy_statistics,
                           noisy_mantissa_bits=noisy_mantissa_bits, compression_level=compression_level)
                   if compact_files else [])
        stored = _stored_runs(out)
        statuses = [stored[(name, run)][0]["summary"]["status"] for run in entries[name]["run_ids"]]
        counts = {"total": len(statuses), "complete": statuses.count("complete"),
                  "diverged": statuses.count("diverged"), "missing": 0}
        with _locked(out / ".sweep.json.lock"):
            data = _read_sweep_json(out)
            data[name]["networks"] = counts
            data[name]["finalized"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            _write_json(out / "sweep.json", data)
        result[name] = {**counts, "compacted": written}
    _write_runs_json(out)
    return result
