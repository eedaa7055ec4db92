"""Shared pytest fixtures for lrid.

Fixtures
--------
small_meta
    Public metadata rows (``lrid_analysis.synthetic.public_meta``) of the
    96 networks trained on ``cifar10`` with ``knet`` or on ``imagenet`` with
    ``alexnet``: 576 (network, layer) rows covering all four learning rules,
    the three layer positions, every batch size and both seed values (0 and
    null). Session-scoped: copy before modifying.
small_table
    A fresh copy of the synthetic tidy table built from ``small_meta``
    (21 checkpoints, ``signal=2.0``, ``seed=0``, one full-access condition):
    12,096 rows following the data contract, safe to modify.
curve_dir
    A folder of adam / sgdm networks with a planted observable signal and
    learning curves that depend only on a rule-dependent, overlapping final
    accuracy (read-only).

Torch, when installed, is limited to one thread: the test machines are small
and shared.
"""

import numpy as np
import pandas as pd
import pytest

from lrid_analysis.dataset import write_table
from lrid_analysis.synthetic import public_meta, synthetic_table

try:  # pragma: no cover - depends on the environment
    import torch
except ImportError:  # pragma: no cover
    torch = None
else:
    torch.set_num_threads(1)

SMALL_NETWORKS = (("cifar10", "knet"), ("imagenet", "alexnet"))


@pytest.fixture(scope="session")
def small_meta():
    meta = public_meta()
    keep = False
    for task, architecture in SMALL_NETWORKS:
        keep = keep | ((meta["task"] == task) & (meta["architecture"] == architecture))
    return meta.loc[keep].reset_index(drop=True)


@pytest.fixture(scope="session")
def _small_table_cached(small_meta):
    return synthetic_table(small_meta, signal=2.0, seed=0)


@pytest.fixture
def small_table(_small_table_cached):
    return _small_table_cached.copy()


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory):
    """The output folder of the ``tiny`` preset's sweep, run once per test session (read-only)."""
    from lrid_generate.sweep import run_sweep

    out = tmp_path_factory.mktemp("tiny_sweep")
    run_sweep("tiny", out, progress=False)
    return out


@pytest.fixture(scope="session")
def curve_dir(tmp_path_factory):
    """adam vs sgdm: a planted observable signal, and a final accuracy that differs by rule but overlaps.

    Final validation accuracy ~ U(0.3, 0.7) (adam) and U(0.5, 0.9) (sgdm); the
    learning curve is a function of it alone, so within a shared accuracy bin
    it carries (almost) no rule information.
    """
    meta = public_meta()
    meta = meta[meta["architecture"].isin(["knet", "knetlrn", "alexnet", "alexnetlrn"])
                & meta["task"].isin(["cifar10", "imagenet"]) & meta["learning_rule"].isin(["adam", "sgdm"])]
    meta = meta.groupby(["task", "architecture", "learning_rule", "batch_size", "model_seed", "dataset_seed"],
                        dropna=False).head(2)  # two layers per network
    table = synthetic_table(meta.reset_index(drop=True), n_checkpoints=6, signal=2.0, seed=5)
    rng = np.random.RandomState(6)
    runs = sorted(table["run_id"].unique())
    rule = table.drop_duplicates("run_id").set_index("run_id")["learning_rule"]
    final = pd.Series(0.3 + 0.2 * (rule.loc[runs] == "sgdm").to_numpy() + rng.uniform(0, 0.4, len(runs)), index=runs)
    t = table["checkpoint"].to_numpy() / 5.0
    f = final.loc[table["run_id"]].to_numpy()
    table["val_accuracy"] = 0.1 + (f - 0.1) * t
    table["val_loss"] = 2.0 * (1 - table["val_accuracy"])
    table["train_accuracy"] = np.where(t > 0, table["val_accuracy"] + 0.02, np.nan)
    table["train_loss"] = np.where(t > 0, table["val_loss"] - 0.05, np.nan)
    path = tmp_path_factory.mktemp("curves") / "data.parquet"
    write_table(table, path)
    return path.parent
