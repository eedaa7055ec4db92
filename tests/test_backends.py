"""Tests for lrid_analysis.backends: the Dask path gives loky's numbers; clear errors."""

import sys

import numpy as np
import pandas as pd
import pytest
from joblib import Parallel, delayed
from sklearn.ensemble import RandomForestClassifier

from lrid_analysis import features as F
from lrid_analysis.backends import BackendError, parallel_backend
from lrid_analysis.dataset import to_view
from lrid_analysis.evaluate import cross_validate
from lrid_analysis.splits import CategoryBalancedSplit
from lrid_analysis.synthetic import synthetic_table


@pytest.fixture(scope="module")
def data(small_meta):
    view = F.select(to_view(synthetic_table(small_meta, signal=1.0, seed=3)), "all")
    X, y = F.flatten(view), view.y
    splits = list(CategoryBalancedSplit(n_splits=3).split(view))
    return X, y, splits


def _evaluate(X, y, splits):
    forest = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0, n_jobs=1)
    return cross_validate(forest, X, y, splits, n_jobs=None, verbose=False)


def _numbers(result):
    return result.table.drop(columns=["fit_seconds", "predict_seconds"]), result.confusion


def test_dask_local_cluster_gives_the_loky_numbers(data):
    distributed = pytest.importorskip("distributed")
    X, y, splits = data
    with parallel_backend("loky", n_jobs=2):
        loky = _evaluate(X, y, splits)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        with parallel_backend("dask", scheduler_address=cluster.scheduler_address, scatter=[X]) as client:
            # X was broadcast once: every worker holds it before any task runs
            held = client.has_what()
            assert len(held) == 2 and all(any(k.startswith("ndarray-") for k in keys) for keys in held.values())
            on_dask = _evaluate(X, y, splits)
            tasks = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.task_groups))
            assert tasks > 0  # the fits ran on the cluster
    table_loky, confusion_loky = _numbers(loky)
    table_dask, confusion_dask = _numbers(on_dask)
    pd.testing.assert_frame_equal(table_loky, table_dask)
    np.testing.assert_array_equal(confusion_loky, confusion_dask)
    # and both equal the plain sequential run
    plain = cross_validate(RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0, n_jobs=1),
                           X, y, splits, n_jobs=1, verbose=False)
    np.testing.assert_array_equal(plain.confusion, confusion_dask)


def test_dask_without_address_starts_and_closes_a_local_cluster():
    pytest.importorskip("distributed")
    with parallel_backend("dask", n_workers=2, processes=False) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        assert Parallel()(delayed(np.square)(k) for k in range(5)) == [0, 1, 4, 9, 16]
    assert client.status == "closed"


def test_threading_backend_and_errors(monkeypatch):
    with parallel_backend("threading", n_jobs=2):
        names = Parallel()(delayed(lambda: __import__("threading").current_thread().name)() for _ in range(4))
    assert len(names) == 4
    with pytest.raises(BackendError, match="one of loky, threading, dask, ray"):
        with parallel_backend("spark"):
            pass
    with pytest.raises(BackendError, match="scheduler-address is for the dask or ray"):
        with parallel_backend("loky", scheduler_address="tcp://x:8786"):
            pass
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if dask were not installed
    with pytest.raises(BackendError, match=r'needs distributed: pip install "lrid\[cluster\]"'):
        with parallel_backend("dask"):
            pass
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(BackendError, match=r"needs ray: pip install \"ray\[default\]\""):
        with parallel_backend("ray"):
            pass


def test_unreachable_scheduler_is_a_clear_error():
    pytest.importorskip("distributed")
    with pytest.raises(BackendError, match="cannot connect to the Dask scheduler at tcp://127.0.0.1:9"):
        with parallel_backend("dask", scheduler_address="tcp://127.0.0.1:9", timeout=2):
            pass


def test_experiment_cli_on_dask_gives_the_loky_numbers(tmp_path, small_meta):
    """``--backend dask`` (a local Dask cluster) scores every split as the default loky run does."""
    pytest.importorskip("distributed")
    from lrid_analysis.dataset import write_table
    from lrid_analysis.experiments import main

    data = tmp_path / "data.parquet"
    write_table(synthetic_table(small_meta, signal=1.0, seed=0), data)
    tables = {}
    for backend in ("loky", "dask"):
        out = tmp_path / backend
        code = main(["separability", "--data", str(data), "--classifier", "random_forest", "--splits", "2",
                     "--param", "n_estimators=10", "--param", "max_features=sqrt", "--selection", "off",
                     "--n-jobs", "2", "--backend", backend, "--out", str(out), "--no-plot", "--quiet"])
        assert code == 0
        tables[backend] = pd.read_parquet(out / "separability.parquet")
    key = ["condition", "split"] if "condition" in tables["loky"] else ["split"]
    a = tables["loky"].sort_values(key, kind="stable").reset_index(drop=True)
    b = tables["dask"].sort_values(key, kind="stable").reset_index(drop=True)
    pd.testing.assert_series_equal(a["test_accuracy"], b["test_accuracy"])


def test_experiment_on_the_tiny_preset_on_dask_equals_the_plain_run(tiny_sweep, tmp_path):
    """The analysis of a generated sweep (tiny preset) gives the same numbers on a local Dask cluster."""
    pytest.importorskip("distributed")
    from lrid_analysis.experiments import main

    tables = {}
    for backend in ("loky", "dask"):
        out = tmp_path / backend
        code = main(["separability", "--data", str(tiny_sweep), "--classifier", "random_forest", "--splits", "2",
                     "--param", "n_estimators=10", "--selection", "off", "--n-jobs", "2", "--backend", backend,
                     "--out", str(out), "--no-plot", "--quiet"])
        assert code == 0
        tables[backend] = pd.read_parquet(out / "separability.parquet")
    assert len(tables["loky"]) >= 2
    timings = [c for c in tables["loky"].columns if c.endswith("_seconds")]
    pd.testing.assert_frame_equal(tables["loky"].drop(columns=timings), tables["dask"].drop(columns=timings))
