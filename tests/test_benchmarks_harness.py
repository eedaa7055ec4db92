"""The classifier harness: plug-ins, tasks and splits, results store, leaderboard, CLI (benchmarks/)."""

import re
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from lrid_benchmarks import harness, leaderboard, plugins, tasks
from lrid_benchmarks.classifiers import main
from lrid_analysis import classifiers as registry
from lrid_analysis.dataset import load_view, to_view, write_table
from lrid_analysis.synthetic import synthetic_table

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "my_classifier.py"
EXAMPLE_SPEC = f"{EXAMPLE}:NearestCentroidClassifier"
#: Full access plus a small noise grid: the FA/IA task must pick unit fraction
#: 0.25 (the smallest) and noise 1.0 (levels 0.5, 1.0 -> the upper middle).
CONDITIONS = ((1.0, 0.0, 0), (0.25, 0.5, 0), (0.25, 1.0, 0), (0.5, 1.0, 0))
NETWORK = ["task", "architecture", "learning_rule", "batch_size", "model_seed", "dataset_seed"]


@pytest.fixture(scope="module")
def tiny_meta(small_meta):
    """One layer per (network, layer position): 96 networks x 3 = 288 trajectories."""
    return small_meta.groupby(NETWORK + ["layer_position_inferred"], dropna=False).head(1).reset_index(drop=True)


@pytest.fixture(scope="module")
def tiny_path(tiny_meta, tmp_path_factory):
    table = synthetic_table(tiny_meta, signal=0.35, seed=3, conditions=CONDITIONS)
    return write_table(table, tmp_path_factory.mktemp("data") / "tiny.parquet")


@pytest.fixture(scope="module")
def tiny_view(tiny_path):
    return load_view(tiny_path, full_access=False)


# ---------------------------------------------------------------------------
# Plug-ins
# ---------------------------------------------------------------------------

def test_parse_registry_module_file_and_label():
    spec = plugins.parse_classifier("logistic")
    assert (spec.kind, spec.label) == ("registry", "logistic")
    spec = plugins.parse_classifier("sklearn.linear_model:LogisticRegression")
    assert spec.kind == "module" and spec.target is LogisticRegression
    spec = plugins.parse_classifier(EXAMPLE_SPEC)
    assert spec.kind == "file" and spec.label == "my_classifier.py:NearestCentroidClassifier"
    assert spec.target.__name__ == "NearestCentroidClassifier"
    spec = plugins.parse_classifier(f"mine={EXAMPLE}:make_classifier")
    assert spec.label == "mine"
    est = plugins.build_classifier(spec, n_categorical=2)
    assert type(est).__name__ == "NearestCentroidClassifier" and est.n_categorical == 2


def test_relative_file_path(monkeypatch):
    monkeypatch.chdir(EXAMPLE.parents[1])
    spec = plugins.parse_classifier("examples/my_classifier.py:NearestCentroidClassifier")
    assert spec.kind == "file"
    assert plugins.build_classifier(spec).get_params()["n_categorical"] == 3


@pytest.mark.parametrize("text, phrase", [
    ("no_such_classifier", "unknown classifier 'no_such_classifier'; registered: random_forest"),
    ("missing/file.py:Model", "does not exist"),
    (f"{EXAMPLE}:Nope", "has no attribute 'Nope'; it defines: NearestCentroidClassifier, make_classifier"),
    ("no_such_module_xyz:Model", "cannot import module 'no_such_module_xyz'"),
    ("sklearn.linear_model:Nope", "has no attribute 'Nope'"),
    ("sklearn.linear_model:", "expected 'package.module:Object'"),
])
def test_bad_specs_are_explained(text, phrase):
    with pytest.raises(plugins.ClassifierSpecError) as info:
        plugins.parse_classifier(text)
    assert phrase in str(info.value)


def test_file_that_fails_to_import(tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("import no_such_module_abc\n")
    with pytest.raises(plugins.ClassifierSpecError, match="importing .*broken.py.* failed: ModuleNotFoundError"):
        plugins.parse_classifier(f"{bad}:Model")


def test_file_may_import_its_neighbour(tmp_path):
    (tmp_path / "helper_for_lrid_test.py").write_text("from sklearn.linear_model import LogisticRegression as M\n")
    (tmp_path / "model.py").write_text("from helper_for_lrid_test import M\n")
    assert plugins.parse_classifier(f"{tmp_path / 'model.py'}:M").target is LogisticRegression


def test_entry_point_plugin_is_found_and_checked(tmp_path, monkeypatch, capsys):
    (tmp_path / "lrid_fake_plugin.py").write_text(textwrap.dedent('''
        from sklearn.neighbors import KNeighborsClassifier

        def make_classifier(n_neighbors=3):
            """k nearest neighbours shipped by a third-party package."""
            return KNeighborsClassifier(n_neighbors=n_neighbors)
    '''))
    dist = tmp_path / "lrid_fake_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: lrid-fake-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[lrid.classifiers]\nfake_knn = lrid_fake_plugin:make_classifier\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry.registry, "_REGISTRY", dict(registry._REGISTRY))  # the registry module
    monkeypatch.setattr(registry.registry, "_PLUGINS_LOADED", False)
    spec = plugins.parse_classifier("fake_knn")
    assert spec.kind == "registry"
    assert type(plugins.build_classifier(spec)).__name__ == "KNeighborsClassifier"
    assert main(["--list-classifiers"]) == 0
    assert re.search(r"fake_knn +k nearest neighbours shipped by a third-party package\.", capsys.readouterr().out)
    assert main(["--check-only", "--classifier", "fake_knn"]) == 0
    assert "fake_knn: compatible" in capsys.readouterr().out


def test_check_only_reports_a_broken_file(tmp_path, capsys):
    path = tmp_path / "bad_model.py"
    path.write_text(textwrap.dedent('''
        import numpy as np
        from sklearn.base import BaseEstimator, ClassifierMixin

        class Codes(ClassifierMixin, BaseEstimator):
            def fit(self, X, y):
                self.classes_ = np.unique(y)
                return self

            def predict(self, X):
                return np.zeros(len(X), dtype=int)
    '''))
    assert main(["--check-only", "--classifier", f"{path}:Codes"]) == 1
    out = capsys.readouterr().out
    assert "bad_model.py:Codes: NOT compatible" in out and "which are not training labels" in out


# ---------------------------------------------------------------------------
# Provenance
# ---------------------------------------------------------------------------

def test_params_digest_is_stable_and_sensitive(tmp_path):
    a = LogisticRegression(C=1.0)
    assert harness.params_digest(a) == harness.params_digest(clone(a))
    assert harness.params_digest(a) != harness.params_digest(LogisticRegression(C=2.0))
    grid = registry.get_classifier("logistic", param_grid={"C": [0.1, 1.0]})
    assert harness.params_digest(grid) == harness.params_digest(clone(grid))
    assert harness.params_digest(grid) != harness.params_digest(registry.get_classifier("logistic",
                                                                                        param_grid={"C": [0.1, 2.0]}))
    # the same user file in two places gives the same digest
    copies = []
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        shutil.copy(EXAMPLE, tmp_path / name / "my_classifier.py")
        spec = plugins.parse_classifier(f"{tmp_path / name / 'my_classifier.py'}:NearestCentroidClassifier")
        copies.append(plugins.build_classifier(spec))
    assert type(copies[0]) is not type(copies[1])
    assert harness.params_digest(copies[0]) == harness.params_digest(copies[1])


def test_environment_versions():
    import sklearn

    env = harness.environment()
    assert env["sklearn_version"] == sklearn.__version__ and env["numpy_version"] == np.__version__
    assert set(env) == {"lrid_version", "sklearn_version", "numpy_version", "torch_version", "python_version"}


# ---------------------------------------------------------------------------
# Tasks and splits
# ---------------------------------------------------------------------------

def test_task_registry():
    names = list(tasks.list_tasks())
    assert names[:4] == ["separation_weight", "separation_act", "separation_grad", "separation_all"]
    assert {"heldout_architecture", "heldout_curriculum", "heldout_task", "subsample_4x5", "fa_ia_noise"} <= set(names)
    assert [t.name for t in tasks.get_tasks(["heldout_task,separation_all"])] == ["separation_all", "heldout_task"]
    with pytest.raises(ValueError, match="unknown task 'nope'; tasks: separation_weight"):
        tasks.get_tasks(["nope"])


def test_select_condition():
    meta = pd.DataFrame({"unit_fraction": [1.0, 1.0, 0.5, 0.5, 0.5, 0.1, 0.1, 0.1, 0.1],
                         "noise_std": [0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.2, 0.4, 0.8],
                         "obs_seed": [0, 1, 0, 0, 0, 0, 3, 1, 0]})
    mask, cond = tasks.select_condition(meta, "full")
    assert mask.tolist() == [True] + [False] * 8 and cond == {"unit_fraction": 1.0, "noise_std": 0.0, "obs_seed": 0}
    mask, cond = tasks.select_condition(meta, "noisy")
    # smallest fraction 0.1; positive levels 0.2, 0.4, 0.8 -> middle 0.4
    assert np.flatnonzero(mask).tolist() == [7] and cond == {"unit_fraction": 0.1, "noise_std": 0.4, "obs_seed": 1}
    with pytest.raises(tasks.TaskSkipped, match="no measurement-noise grid"):
        tasks.select_condition(meta.iloc[:2], "noisy")
    with pytest.raises(tasks.TaskSkipped, match="no full-access"):
        tasks.select_condition(meta.iloc[2:], "full")


def test_prepare_tasks(tiny_view, tiny_meta, tmp_path):
    digest = tasks.data_digest(tiny_view)
    store = tasks.SplitStore(tmp_path)
    meta, y = tiny_view.meta, tiny_view.y
    full = ((meta["unit_fraction"] == 1.0) & (meta["noise_std"] == 0.0)).to_numpy()

    sep = tasks.prepare_task(tasks.TASKS["separation_weight"], tiny_view, n_splits=3, seed=0, digest=digest,
                             store=store)
    assert np.array_equal(sep.rows, np.flatnonzero(full)) and len(sep.rows) == len(tiny_meta)
    X, labels = sep.features(tiny_view)
    assert X.shape == (len(tiny_meta), 21, 13 + 3) and labels.tolist() == y[full].tolist()
    for train, test in sep.splits:
        assert not set(train) & set(test)
        assert pd.Series(labels[test]).value_counts().nunique() == 1  # category-balanced

    arch = tasks.prepare_task(tasks.TASKS["heldout_architecture"], tiny_view, n_splits=3, seed=0, digest=digest)
    task_meta = meta.iloc[arch.rows].reset_index(drop=True)
    assert sorted(arch.fold_names) == sorted(tiny_meta["architecture"].unique())
    for name, (train, test) in zip(arch.fold_names, arch.splits):
        assert set(task_meta["architecture"].iloc[test]) == {name}
        assert name not in set(task_meta["architecture"].iloc[train])

    sub = tasks.prepare_task(tasks.TASKS["subsample_4x5"], tiny_view, n_splits=3, seed=0, digest=digest)
    assert sub.n_checkpoints == 4 and sub.checkpoints.shape == (len(sub.rows), 4)
    assert (np.diff(sub.checkpoints, axis=1) == 5).all() and sub.checkpoints.min() >= 0
    assert sub.checkpoints.max() <= 20
    X, _ = sub.features(tiny_view)
    sub_view = tiny_view.subset(sub.rows).select_observables("all")
    row, ckpt = 5, sub.checkpoints[5]
    assert np.array_equal(X[row, :, 0], sub_view.X[row, ckpt, 0])  # observable 0 at the sampled checkpoints

    noise = tasks.prepare_task(tasks.TASKS["fa_ia_noise"], tiny_view, n_splits=3, seed=0, digest=digest)
    assert noise.condition == {"unit_fraction": 0.25, "noise_std": 1.0, "obs_seed": 0}
    assert noise.labels == ["feedback", "information"] and noise.chance == 0.5
    chosen = meta.iloc[noise.rows]
    assert set(chosen["unit_fraction"]) == {0.25} and set(chosen["noise_std"]) == {1.0}

    # stored once, read back identically
    loaded = store.load(tasks.TASKS["separation_weight"], digest, 3, 0, len(tiny_view))
    assert loaded is not None and loaded.path == sep.path and loaded.split_digests == sep.split_digests
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(loaded.splits, sep.splits))


def test_noise_task_skipped_without_grid(small_table):
    view = to_view(small_table)
    with pytest.raises(tasks.TaskSkipped, match="no measurement-noise grid"):
        tasks.prepare_task(tasks.TASKS["fa_ia_noise"], view)


def test_data_digest_tracks_content(tiny_view):
    digest = tasks.data_digest(tiny_view)
    assert digest == tasks.data_digest(tiny_view.subset(np.arange(len(tiny_view))))
    changed = tiny_view.subset(np.arange(len(tiny_view)))
    changed.X[0, 0, 0] += 1.0
    assert tasks.data_digest(changed) != digest
    relabelled = tiny_view.subset(np.arange(len(tiny_view)))
    relabelled.meta.loc[0, "learning_rule"] = "sgdm" if relabelled.meta.loc[0, "learning_rule"] != "sgdm" else "adam"
    assert tasks.data_digest(relabelled) != digest


# ---------------------------------------------------------------------------
# Results store, resume
# ---------------------------------------------------------------------------

def test_results_store_appends_atomically(tmp_path):
    store = harness.ResultsStore(tmp_path / "results.parquet")
    row = {"classifier": "a", "params_digest": "p", "data_digest": "d", "task": "t", "split_digest": "s",
           "split": 0, "accuracy": 0.5}
    store.append([row])
    store.append([{**row, "split_digest": "s2", "split": 1}])
    again = harness.ResultsStore(tmp_path / "results.parquet")
    assert len(again) == 2 and again.has(("a", "p", "d", "t", "s2")) and not again.has(("a", "p", "d", "t", "x"))
    assert list(again.table.columns[:len(harness.RESULT_COLUMNS)]) == list(harness.RESULT_COLUMNS)
    assert [p.name for p in tmp_path.iterdir()] == ["results.parquet"]  # no temporary left behind
    (tmp_path / "other.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValueError, match="other.parquet: not a readable results table"):
        harness.ResultsStore(tmp_path / "other.parquet")


def test_resume_at_split_granularity(tiny_path, tmp_path):
    common = dict(data=tiny_path, tasks=["separation_all"], out=tmp_path, quick=True, verbose=False)
    first = harness.run_benchmark([EXAMPLE_SPEC], n_splits=2, **common)
    assert (first.n_new, first.n_reused) == (4, 0)
    # 3 splits with the same seed: the first two are the same draws, only split 2 is new
    second = harness.run_benchmark([EXAMPLE_SPEC], n_splits=3, **common)
    assert (second.n_new, second.n_reused) == (2, 4)
    assert len(pd.read_parquet(tmp_path / "results.parquet")) == 6
    assert sorted(second.results["split"].tolist()) == [0, 0, 1, 1, 2, 2]
    # another seed: other splits, all new
    third = harness.run_benchmark([EXAMPLE_SPEC], n_splits=2, seed=1, **common)
    assert third.n_new == 4


def test_failing_classifier_is_reported_and_the_rest_runs(tiny_path, tmp_path):
    path = tmp_path / "fragile.py"
    path.write_text(textwrap.dedent('''
        from sklearn.linear_model import LogisticRegression

        class Fragile(LogisticRegression):
            def fit(self, X, y):
                if len(X) > 100:
                    raise RuntimeError("too many rows for me")
                return super().fit(X, y)
    '''))
    result = harness.run_benchmark([f"{path}:Fragile"], data=tiny_path, tasks=["separation_grad"], out=tmp_path,
                                   quick=True, verbose=False)
    assert len(result.failures) == 1 and "RuntimeError: too many rows for me" in result.failures[0]
    assert set(result.results["classifier"]) == {"random_forest"}
    assert "too many rows for me" in (tmp_path / "leaderboard.md").read_text()


def test_incompatible_classifier_stops_before_fitting(tiny_path, tmp_path):
    path = tmp_path / "nofit.py"
    path.write_text("class Model:\n    def predict(self, X):\n        return X\n")
    with pytest.raises(harness.CompatibilityError, match="has no fit method"):
        harness.run_benchmark([f"{path}:Model"], data=tiny_path, out=tmp_path, quick=True, verbose=False)
    assert not (tmp_path / "results.parquet").exists()


# ---------------------------------------------------------------------------
# Leaderboard
# ---------------------------------------------------------------------------

def _corrected(values, n_train, n_test):
    values = np.asarray(values, dtype=float)
    J = len(values)
    se = np.sqrt((1 / J + n_test / n_train) * values.var(ddof=1))
    return values.mean(), se, J - 1


def test_leaderboard_statistics_by_hand():
    rng = np.random.default_rng(0)
    rows = []
    for task in ("t1", "t2"):
        for name, shift in (("random_forest", 0.0), ("a", 0.03), ("b", -0.05)):
            for k in range(5):
                rows.append({"task": task, "classifier": name, "params_digest": name, "split_digest": f"{task}{k}",
                             "accuracy": 0.7 + shift + 0.02 * rng.standard_normal(), "balanced_accuracy": 0.5,
                             "fit_seconds": 1.0, "predict_seconds": 0.1, "n_train": 300, "n_test": 100})
    results = pd.DataFrame(rows)
    board = leaderboard.build_leaderboard(results, task_order=["t2", "t1"])
    assert board["task"].tolist()[:3] == ["t2"] * 3
    for _, r in board.iterrows():
        scores = results.query("task == @r.task and classifier == @r.classifier")["accuracy"].to_numpy()
        mean, se, df = _corrected(scores, 300, 100)
        half = sps.t.ppf(0.975, df) * se
        assert r["accuracy_mean"] == pytest.approx(mean, abs=1e-12)
        assert r["accuracy_sem"] == pytest.approx(scores.std(ddof=1) / np.sqrt(5), abs=1e-12)
        assert (r["ci_low"], r["ci_high"]) == pytest.approx((mean - half, mean + half), abs=1e-12)
    for task in ("t1", "t2"):
        ref = results.query("task == @task and classifier == 'random_forest'")["accuracy"].to_numpy()
        p = {}
        for name in ("a", "b"):
            other = results.query("task == @task and classifier == @name")["accuracy"].to_numpy()
            mean, se, df = _corrected(other - ref, 300, 100)
            p[name] = 2 * sps.t.sf(abs(mean / se), df)
            r = board.query("task == @task and classifier == @name").iloc[0]
            assert r["difference"] == pytest.approx(mean, abs=1e-12) and r["p"] == pytest.approx(p[name])
        low, high = sorted(p, key=p.get)  # Holm with two tests: 2 * smallest, then max(that, largest)
        first = min(1.0, 2 * p[low])
        holm = {low: first, high: max(first, min(1.0, p[high]))}
        for name in ("a", "b"):
            assert board.query("task == @task and classifier == @name")["p_holm"].iloc[0] == pytest.approx(holm[name])
    assert board.query("classifier == 'random_forest'")["p"].isna().all()
    text = leaderboard.to_markdown(board, notes={"t3": "skipped: no data"})
    assert text.count("| reference |") == 2 and "- t3: skipped: no data" in text


def test_leaderboard_pairs_only_the_same_splits():
    rows = [{"task": "t", "classifier": c, "params_digest": c, "split_digest": s, "accuracy": a,
             "balanced_accuracy": a, "fit_seconds": 0.0, "predict_seconds": 0.0, "n_train": 30, "n_test": 10}
            for c, s, a in [("random_forest", "s0", 0.5), ("random_forest", "s1", 0.6), ("random_forest", "s2", 0.7),
                            ("x", "s0", 0.6), ("x", "s1", 0.8), ("x", "other", 0.1)]]
    board = leaderboard.build_leaderboard(pd.DataFrame(rows))
    x = board.query("classifier == 'x'").iloc[0]
    assert x["difference"] == pytest.approx(0.15)  # s0 and s1 only
    assert x["n_splits"] == 3 and x["accuracy_mean"] == pytest.approx(0.5)


# ---------------------------------------------------------------------------
# Command line, end to end
# ---------------------------------------------------------------------------

def test_cli_end_to_end_with_the_example_classifier(tiny_path, tiny_meta, tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["--classifier", EXAMPLE_SPEC, "--data", str(tiny_path), "--quick", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "my_classifier.py:NearestCentroidClassifier: compatible" in printed
    assert "| task | classifier | accuracy (mean ± s.e.m.)" in printed

    results = pd.read_parquet(out / "results.parquet")
    assert list(results.columns) == list(harness.RESULT_COLUMNS)
    n_curricula = len(tiny_meta[["batch_size", "dataset_seed"]].drop_duplicates())
    per_classifier = (4 * harness.QUICK_SPLITS + tiny_meta["architecture"].nunique() + n_curricula
                      + tiny_meta["task"].nunique() + harness.QUICK_SPLITS + harness.QUICK_SPLITS)
    assert len(results) == 2 * per_classifier
    assert set(results["classifier"]) == {"random_forest", "my_classifier.py:NearestCentroidClassifier"}
    assert results["data_digest"].nunique() == 1 and results["params_digest"].notna().all()
    assert (results.groupby("classifier")["params_digest"].nunique() == 1).all()  # neither depends on the layout
    # every classifier saw the same rows of every split
    same = results.groupby(["task", "split"]).agg(d=("split_digest", "nunique"), n=("n_train", "nunique"),
                                                  m=("n_test", "nunique"))
    assert (same == 1).all().all()
    assert (results["n_features"] == np.where(results["task"] == "separation_weight", 13 * 21 + 3,
                                              np.where(results["task"] == "separation_act", 8 * 21 + 3,
                                              np.where(results["task"] == "separation_grad", 3 * 21 + 3,
                                              np.where(results["task"] == "subsample_4x5", 24 * 4 + 3,
                                                       24 * 21 + 3))))).all()
    assert (results.query("task == 'fa_ia_noise'")["n_test"] % 2 == 0).all()
    assert len(list((out / "splits").rglob("*.npz"))) == len(tasks.TASKS)

    md, png = out / "leaderboard.md", out / "leaderboard.png"
    assert md.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = md.read_text()

    # the leaderboard's numbers are the results table's means
    board = pd.read_csv(out / "leaderboard.csv")
    assert len(board) == results.groupby(["task", "classifier"]).ngroups
    for _, r in board.iterrows():
        scores = results.query("task == @r.task and classifier == @r.classifier")["accuracy"].to_numpy()
        assert r["accuracy_mean"] == pytest.approx(scores.mean(), abs=1e-12)
        assert r["accuracy_sem"] == pytest.approx(scores.std(ddof=1) / np.sqrt(len(scores)), abs=1e-12)
        assert r["n_splits"] == len(scores)
        assert f"| {r['task']} | {r['classifier']} | {scores.mean():.3f} ± " in text

    # re-running skips everything
    mtime = (out / "results.parquet").stat().st_mtime_ns
    assert main(argv) == 0
    assert "0 split(s) fitted" in capsys.readouterr().out
    again = pd.read_parquet(out / "results.parquet")
    assert len(again) == len(results) and (out / "results.parquet").stat().st_mtime_ns == mtime


def test_cli_options(tmp_path, capsys):
    assert main(["--list-tasks"]) == 0
    assert "fa_ia_noise" in capsys.readouterr().out
    assert main(["--tasks", "nope", "--data", str(tmp_path)]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err
    assert main(["--data", str(tmp_path / "missing"), "--quick", "--out", str(tmp_path)]) == 1
    assert "no Parquet data" in capsys.readouterr().err
    assert main(["--splits", "1"]) == 2
    assert capsys.readouterr().err.strip() == "error: --splits must be >= 2, got 1"
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "path/to/file.py:Object" in capsys.readouterr().out
