"""Experiments and benchmark CLIs as a user meets them: classifiers, output folders, one-line errors."""

import json
from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lrid_analysis import experiments
from lrid_analysis.dataset import write_table
from lrid_analysis.experiments import cli as experiments_cli
from lrid_analysis.experiments import data as experiments_data
from lrid_analysis.synthetic import synthetic_table
from lrid_benchmarks import harness
from lrid_benchmarks.classifiers import build_parser as harness_parser
from lrid_benchmarks.classifiers import main as harness_main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "my_classifier.py"
FAST = ["--classifier", "random_forest", "--param", "n_estimators=10", "--n-jobs", "1", "--quiet", "--splits", "2", "--observables", "grad"]


@pytest.fixture(scope="module")
def signal_dir(tmp_path_factory, small_meta):
    root = tmp_path_factory.mktemp("cli-data")
    write_table(synthetic_table(small_meta, signal=2.0, seed=0), root / "data.parquet")
    return root


def _main(name, data, out, *extra):
    return experiments.main([name, "--data", str(data), "--out", str(out), *FAST, *extra])


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# ---------------------------------------------------------------------------
# classifiers
# ---------------------------------------------------------------------------

def test_a_dict_of_pipelines_keeps_both(signal_dir):
    """Regression (#10 bug 1): a list of two Pipelines kept one; a dict was rejected."""
    a = make_pipeline(LogisticRegression(max_iter=300))
    b = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=300))
    run = experiments.get_experiment("separability").run
    result = run(signal_dir, classifier={"plain": a, "scaled": b}, observables="grad", n_splits=2, verbose=False,
                 plot=False)
    assert list(pd.unique(result.table["classifier"])) == ["plain", "scaled"]
    assert len(result.table) == 2 * 2 * 2  # (trajectory, network) x classifiers x splits
    pairs = run(signal_dir, classifier=[("plain", a), ("scaled", b)], observables="grad", n_splits=2, verbose=False,
                plot=False)
    pd.testing.assert_series_equal(result.table["test_accuracy"], pairs.table["test_accuracy"])
    with pytest.raises(experiments.ExperimentError, match="two classifiers are labelled 'Pipeline'"):
        run(signal_dir, classifier=[a, b], observables="grad", n_splits=2, verbose=False, plot=False)


def test_classifier_from_a_file_for_experiments(signal_dir, tmp_path):
    """Regression (#10 bug 2): ``--classifier file.py:Class`` failed with 'cannot import module'."""
    code = experiments.main(["separability", "--data", str(signal_dir), "--out", str(tmp_path), "--quiet",
                             "--n-jobs", "1", "--splits", "2", "--observables", "grad",
                             "--classifier", f"{EXAMPLE}:NearestCentroidClassifier"])
    assert code == 0
    table = pd.read_parquet(tmp_path / "separability.parquet")
    assert set(table["classifier"]) == {"my_classifier.py:NearestCentroidClassifier"}
    assert table["test_accuracy"].mean() > 0.6  # the planted signal is found


# ---------------------------------------------------------------------------
# output folders
# ---------------------------------------------------------------------------

def test_rerun_with_other_settings_is_refused_then_replaced(signal_dir, tmp_path, capsys):
    """Regression (#10 bug 5): a rerun with other options overwrote silently and left the old _stats."""
    assert _main("separability", signal_dir, tmp_path, "--observables", "act") == 0  # grad + act: comparisons
    assert (tmp_path / "separability_stats.parquet").is_file()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert "separability_stats.parquet" in manifest["files"]
    capsys.readouterr()
    assert _main("separability", signal_dir, tmp_path) == 2  # only grad now
    err = _one_error_line(capsys)
    assert "other settings" in err and "observables" in err and "--overwrite" in err
    assert _main("separability", signal_dir, tmp_path, "--overwrite") == 0
    assert not (tmp_path / "separability_stats.parquet").exists()  # no comparisons with one set: stale file gone
    assert not (tmp_path / "separability_stats.json").exists()
    summary = pd.read_parquet(tmp_path / "separability_summary.parquet")
    assert set(summary["observables"]) == {"grad"}
    # the same settings again: allowed, nothing refitted
    capsys.readouterr()
    assert _main("separability", signal_dir, tmp_path) == 0
    assert "reused 4 cached fits" in capsys.readouterr().out  # 2 splits x 2 groupings


def test_figure_formats_and_report(signal_dir, tmp_path):
    assert _main("separability", signal_dir, tmp_path, "--format", "png,pdf,svg") == 0
    assert (tmp_path / "separability.pdf").read_bytes().startswith(b"%PDF")
    assert b"<svg" in (tmp_path / "separability.svg").read_bytes()[:2000]
    report = (tmp_path / "README.md").read_text()
    for name in ("separability.parquet", "separability_summary.parquet", "separability.png", "separability.pdf",
                 "manifest.json"):
        assert f"]({name})" in report and (tmp_path / name).is_file()
    assert '"n_splits": 2' in report  # the settings
    # a run of the same settings without a figure keeps the figures
    assert _main("separability", signal_dir, tmp_path, "--no-plot") == 0
    assert (tmp_path / "separability.pdf").is_file()
    # a later run with png only removes the pdf and svg of the earlier one
    assert _main("separability", signal_dir, tmp_path) == 0
    assert not (tmp_path / "separability.pdf").exists() and not (tmp_path / "separability.svg").exists()


def test_bad_format_is_one_line(signal_dir, tmp_path, capsys):
    assert _main("separability", signal_dir, tmp_path, "--format", "gif") == 2
    assert "use one or more of png, pdf, svg" in _one_error_line(capsys)


# ---------------------------------------------------------------------------
# one-line errors (#9 item 12)
# ---------------------------------------------------------------------------

def test_n_jobs_zero(signal_dir, tmp_path, capsys):
    assert _main("separability", signal_dir, tmp_path, "--n-jobs", "0") == 2
    assert "--n-jobs must not be 0" in _one_error_line(capsys)
    assert harness_main(["--data", str(signal_dir), "--out", str(tmp_path), "--n-jobs", "0"]) == 2
    assert "--n-jobs must not be 0" in _one_error_line(capsys)


def test_bad_param_value_is_refused_before_fitting(signal_dir, tmp_path, capsys):
    assert _main("separability", signal_dir, tmp_path, "--classifier", "random_forest", "--param",
                 "n_estimators=-5") == 2
    err = _one_error_line(capsys)
    assert "'n_estimators' parameter" in err and "-5" in err
    assert not list(tmp_path.glob("parts/*"))


def test_classifier_module_raising_at_import(signal_dir, tmp_path, capsys):
    bad = tmp_path / "raises.py"
    bad.write_text("raise RuntimeError('the GPU is not ready')\n")
    assert _main("separability", signal_dir, tmp_path / "out", "--classifier", f"{bad}:Model") == 2
    err = _one_error_line(capsys)
    assert "RuntimeError: the GPU is not ready" in err
    assert harness_main(["--data", str(signal_dir), "--out", str(tmp_path / "b"), "--classifier", f"{bad}:Model"]) == 2
    assert "RuntimeError: the GPU is not ready" in _one_error_line(capsys)
    # a dotted module path that raises (not an ImportError) is one line too
    (tmp_path / "raising_pkg_mod.py").write_text("1 / 0\n")
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        assert _main("separability", signal_dir, tmp_path / "out", "--classifier", "raising_pkg_mod:Model") == 2
        assert "ZeroDivisionError: division by zero" in _one_error_line(capsys)
    finally:
        sys.path.remove(str(tmp_path))


def test_unwritable_out(signal_dir, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert _main("separability", signal_dir, blocker / "results") == 1
    assert f"cannot write to --out {blocker / 'results'}" in _one_error_line(capsys)
    assert harness_main(["--data", str(signal_dir), "--out", str(blocker / "bench"), "--quick"]) == 1
    assert "cannot write to --out" in _one_error_line(capsys)


def test_memory_error_while_loading(signal_dir, tmp_path, capsys, monkeypatch):
    def boom(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(experiments_data, "load_view", boom)
    assert _main("separability", signal_dir, tmp_path) == 1
    assert "out of memory while loading" in _one_error_line(capsys)
    monkeypatch.setattr(harness, "load_view", boom)
    assert harness_main(["--data", str(signal_dir), "--out", str(tmp_path / "b"), "--quick"]) == 1
    assert "out of memory" in _one_error_line(capsys)


def test_unexpected_errors_are_one_line_and_debug_shows_the_traceback(signal_dir, tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("something internal")

    monkeypatch.setattr(experiments_data, "load_view", broken)
    assert _main("separability", signal_dir, tmp_path) == 1
    assert "KeyError" in _one_error_line(capsys)
    with pytest.raises(KeyError):
        _main("separability", signal_dir, tmp_path, "--debug")


def test_defaults_agree_between_experiments_and_benchmark():
    """Regression (#10 bug 6): --n-jobs defaulted to -1 in the experiments and 1 in the benchmark."""
    module = experiments.get_experiment("separability")
    exp = experiments_cli.build_parser(module).parse_args([])
    bench = harness_parser().parse_args([])
    assert exp.n_jobs == bench.n_jobs == -1
    assert exp.random_state == bench.seed == 0
    assert experiments_cli.build_parser(module).parse_args(["--seed", "3"]).random_state == 3  # deprecated alias
