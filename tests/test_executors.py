"""Tests for lrid_generate.executors: cluster options, packs, submitit-local arrays, the Slurm submission."""

import json
import os
import pickle
import sys

import pandas as pd
import pytest

from lrid_analysis.dataset import read_table
from lrid_analysis.observables import OBSERVABLE_NAMES
from lrid_generate.__main__ import main
from lrid_generate.executors import (
    ClusterOptions,
    load_cluster_config,
    make_executor,
    plan_tasks,
)
from lrid_generate.presets import PRESETS, SweepError
from lrid_generate.sweep import run_sweep

TINY = PRESETS["tiny"]
KEY = ["run_id", "layer_name", "unit_fraction", "noise_std", "checkpoint"]


def test_plan_tasks_keep_packs_whole_and_cover_the_run_ids_in_order():
    rng = __import__("random").Random(0)
    ids = [f"n{i}" for i in range(40)]
    sizes = [rng.randint(1, 6) for _ in range(12)]
    packs, start = [], 0
    for size in sizes:
        packs.append(ids[start:start + size])
        start += size
    packs = [p for p in packs if p]
    for per_task in (1, 4, 8, 50):
        tasks = plan_tasks(packs, per_task)
        assert [r for task in tasks for r in task] == [r for pack in packs for r in pack]
        for pack in packs:  # every pack inside one task
            assert sum(set(pack) <= set(task) for task in tasks) == 1
        for task in tasks:  # over the limit only when one pack is
            assert len(task) <= per_task or any(task == pack for pack in packs)
    assert plan_tasks([], 4) == []


def test_cluster_config_from_toml_and_overrides(tmp_path):
    path = tmp_path / "cluster.toml"
    path.write_text('[cluster]\nexecutor = "submitit-slurm"\npartition = "gpu"\ntime = 90\ngpus_per_task = 2\n'
                    'setup = ["source ~/venv/bin/activate"]\n[cluster.slurm_extra]\nmail-type = "END"\n')
    options = load_cluster_config(path)
    assert options == ClusterOptions(executor="submitit-slurm", partition="gpu", time=90, gpus_per_task=2,
                                     setup=["source ~/venv/bin/activate"], slurm_extra={"mail-type": "END"})
    changed = options.updated(time=30, partition=None)
    assert changed.time == 30 and changed.partition == "gpu"
    path.write_text('[cluster]\npartiton = "gpu"\n')
    with pytest.raises(SweepError, match="unknown cluster option.*partiton"):
        load_cluster_config(path)
    path.write_text("[cluster\n")
    with pytest.raises(SweepError, match="cannot read"):
        load_cluster_config(path)
    with pytest.raises(SweepError, match="networks_per_task must be >= 1"):
        ClusterOptions(networks_per_task=0)
    with pytest.raises(SweepError, match="executor must be one of"):
        ClusterOptions(executor="kubernetes")


def test_missing_submitit_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "submitit", None)  # as if not installed
    with pytest.raises(SweepError, match=r'pip install "lrid\[cluster\]"'):
        make_executor(ClusterOptions(executor="submitit-local"), tmp_path)
    code = main(["sweep", "--preset", "tiny", "--out", str(tmp_path / "out"), "--executor", "submitit-local"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "lrid[cluster]" in err


def _fake_slurm(tmp_path, monkeypatch):
    """``srun`` and ``sbatch`` stand-ins on PATH; sbatch keeps a copy of the script it is given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    copy = tmp_path / "submitted.sh"
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\ncp "$1" {copy}\necho "Submitted batch job 4242"\n')
    for tool in ("srun", "sbatch"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return copy


def test_slurm_submission_is_one_array_of_the_missing_networks(tmp_path, monkeypatch, capsys):
    pytest.importorskip("submitit")
    script = _fake_slurm(tmp_path, monkeypatch)
    out = tmp_path / "out"
    done = run_sweep("tiny", out, progress=False, shard=(0, 4), pack=1)  # one network already stored
    assert done["complete"] == 1
    config = tmp_path / "cluster.toml"
    config.write_text('[cluster]\npartition = "gpu"\ntime = 90\ngpus_per_task = 2\narray_parallelism = 8\n'
                      'setup = ["source /opt/venv/bin/activate"]\n')
    code = main(["sweep", "--preset", "tiny", "--out", str(out), "--executor", "submitit-slurm", "--config",
                 str(config), "--networks-per-task", "1", "--array-parallelism", "2", "--workers", "2",
                 "--device", "cuda", "--pack", "1"])
    printed = capsys.readouterr().out
    assert code == 0 and "3 networks as 3 array task(s)" in printed and "job 4242" in printed
    text = script.read_text()
    lines = set(text.splitlines())
    expected = {"#SBATCH --array=0-2%2", "#SBATCH --partition=gpu", "#SBATCH --time=90",
                "#SBATCH --gpus-per-node=2", "#SBATCH --cpus-per-task=2", "#SBATCH --job-name=lrid-tiny",
                "#SBATCH --nodes=1", "#SBATCH --ntasks-per-node=1", "source /opt/venv/bin/activate"}
    assert expected <= lines, text
    assert "-m submitit.core._submit" in text and str(out.resolve() / ".submitit") in text
    # the pickled array tasks: the three missing networks, once each, with the sweep's settings
    pickles = sorted((out / ".submitit").rglob("*_submitted.pkl"))
    assert len(pickles) == 3
    packs, settings = [], []
    for path in pickles:
        with open(path, "rb") as handle:
            delayed = pickle.load(handle)
        preset, folder, run_ids, run_kwargs = delayed.args
        assert preset == TINY and folder == str(out.resolve())
        packs.append(run_ids)
        settings.append(run_kwargs)
    stored = TINY.specs()[0].run_id
    assert sorted(r for pack in packs for r in pack) == sorted(s.run_id for s in TINY.specs() if s.run_id != stored)
    assert all(s == {"device": "cuda", "workers": 2, "threads": 1, "data_dir": None, "pack": 1,
                     "device_memory_gb": None} for s in settings)


def test_submitit_local_array_equals_plain_run(tmp_path, capsys):
    pytest.importorskip("submitit")
    plain, array = tmp_path / "plain", tmp_path / "array"
    run_sweep("tiny", plain, progress=False, threads=1)
    code = main(["sweep", "--preset", "tiny", "--out", str(array), "--executor", "submitit-local",
                 "--networks-per-task", "2", "--time", "20", "--wait"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "as 2 array task(s)" in captured.out and "4 trained" in captured.out
    tasks = json.loads((array / "sweep.json").read_text())["tiny"]["tasks"]
    assert len(tasks) == 2  # two processes, each with its pack
    assert main(["finalize", "--out", str(array)]) == 0
    a = read_table(plain).sort_values(KEY).reset_index(drop=True)
    b = read_table(array).sort_values(KEY).reset_index(drop=True)
    pd.testing.assert_frame_equal(a[KEY + list(OBSERVABLE_NAMES)], b[KEY + list(OBSERVABLE_NAMES)])
    assert main(["sweep", "--preset", "tiny", "--out", str(array), "--executor", "submitit-local"]) == 0
    assert "nothing to submit" in capsys.readouterr().out


def test_finalize_cli_names_missing_networks(tmp_path, capsys):
    out = tmp_path / "out"
    run_sweep("tiny", out, progress=False, shard=(1, 4), pack=1)
    assert main(["finalize", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    missing = [s.run_id for i, s in enumerate(TINY.specs()) if i != 1]
    assert len(err.splitlines()) == 1 and "3 of 4 networks have no shard yet" in err
    assert all(run in err for run in missing)
