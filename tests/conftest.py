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

Torch, when installed, is limited to one thread: the test machines are small
and shared.
"""

import pytest

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
