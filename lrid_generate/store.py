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
same on compacted folders.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch

import lrid_generate
from lrid_analysis.atomic import write_text_atomic
from lrid_analysis.dataset import write_table
from lrid_generate.presets import DEFAULT_MODEL_SEED, RunSpec, SweepError
from lrid_generate.tasks import resolve_dataset_seed

__all__ = ["COMPACTED_NAME", "collect_runs", "compact", "shard_path", "versions", "write_shard"]

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


def _stored_runs(out):
    """Every network stored under ``out``: ``{(source, run_id): (record, path)}``.

    A record is ``{"spec": ..., "summary": ..., "versions": ...}`` from a
    shard's footer (key ``lrid_run``) or from a compacted file's footer (key
    ``lrid_runs``, one record per network). Parquet files without either key
    and hidden files are ignored.
    """
    out = Path(out)
    runs = {}
    if not out.is_dir():
        return runs
    for path in sorted(out.rglob("*.parquet")):
        if any(part.startswith(".") for part in path.relative_to(out).parts):
            continue
        try:
            metadata = pq.read_schema(path).metadata or {}
        except Exception as err:  # noqa: BLE001 - name the file
            raise SweepError(f"{path}: not a readable Parquet file ({err}); delete it and run again") from err
        if RUNS_METADATA_KEY.encode() in metadata:
            records = json.loads(metadata[RUNS_METADATA_KEY.encode()])
        elif RUN_METADATA_KEY.encode() in metadata:
            record = json.loads(metadata[RUN_METADATA_KEY.encode()])
            records = {RunSpec.from_dict(record["spec"]).run_id: record}
        else:
            continue
        for run, record in records.items():
            runs.setdefault((record["spec"]["source"], run), (record, path))
    return runs


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

    Returns
    -------
    Path
        The shard written (under ``_diverged/`` unless the run is complete).
    """
    path = shard_path(out, spec, diverged=summary["status"] != "complete")
    metadata = {RUN_METADATA_KEY: json.dumps({"spec": spec.to_dict(), "summary": summary, "versions": versions()})}
    write_table(rows, path, metadata=metadata)
    return path


def compact(out, source=None):
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

    Returns
    -------
    list of Path
        The compacted files written.
    """
    from lrid_analysis.dataset import read_table

    out = Path(out)
    folders = sorted({p.parent for p in out.rglob("*.parquet")
                      if not any(part.startswith(".") for part in p.relative_to(out).parts)})
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
        write_table(frame, target, metadata={RUNS_METADATA_KEY: json.dumps(records, sort_keys=True)})
        for path, _ in shards:
            path.unlink()
        written.append(target)
    return written


def collect_runs(out):
    """Summaries of every network stored under ``out`` (complete and diverged).

    Returns
    -------
    pandas.DataFrame
        One row per network: the spec's fields (without the measurement
        conditions, counted in ``n_conditions``), the summary's and the file
        holding it, sorted by source and run id.
    """
    out = Path(out)
    records = []
    for (source, run), (record, path) in sorted(_stored_runs(out).items()):
        spec = dict(record["spec"])
        n_conditions = len(spec.pop("conditions", []))
        spec["task_options"] = json.dumps(spec.get("task_options", {}), sort_keys=True)
        summary = {k: v for k, v in record["summary"].items() if k != "traceback"}
        records.append({**spec, **summary, "run_id": run, "n_conditions": n_conditions,
                        "path": str(path.relative_to(out))})
    return pd.DataFrame.from_records(records)



def _update_sweep_json(out, preset, device, workers, counts):
    path = Path(out) / "sweep.json"
    data = {}
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise SweepError(f"{path}: not valid JSON ({err}); delete it to start over") from err
    data[preset.name] = {
        "preset": preset.to_dict(),
        "versions": versions(),
        "device": device,
        "workers": workers,
        "networks": counts,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(sys.argv),
        "layout": "source=<preset>/task=<task>/<run_id>.parquet; diverged runs under _diverged/",
        "seeds": {"model_seed None": DEFAULT_MODEL_SEED, "dataset_seed None": resolve_dataset_seed(None)},
    }
    _write_json(path, data)
