"""End-to-end tests of the experiments on small synthetic tables with a planted signal.

Every experiment runs through the command line entry (in process) with a
tiny random forest (10 trees, fixed settings) and 2-3 splits; the outputs are
read back, the planted signal must show (accuracy well above chance) and a
table without signal must stay near chance.
"""

import json
import subprocess
import sys

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from sklearn.ensemble import RandomForestClassifier

from lrid_analysis import evaluate, experiments, features, runner
from lrid_analysis.dataset import load_view, write_table
from lrid_analysis.experiments import _heldout, options, trajectory_subsample
from lrid_analysis.splits import CategoryBalancedSplit, NetworkBalancedSplit
from lrid_analysis.synthetic import synthetic_table

FAST = ["--param", "n_estimators=10", "--n-jobs", "1", "--quiet"]
NOISE_LEVELS = ((1.0, 0.0), (0.3, 0.0), (1.0, 3.0), (0.3, 3.0))


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory, small_meta):
    """Parquet folders: planted signal, no signal, and an FA/IA unit-noise grid."""
    root = tmp_path_factory.mktemp("experiments-data")
    write_table(synthetic_table(small_meta, signal=2.0, seed=0), root / "signal" / "data.parquet")
    write_table(synthetic_table(small_meta, signal=0.0, seed=1), root / "null" / "data.parquet")
    fa_ia = small_meta[small_meta["learning_rule"].isin(["feedback", "information"])]
    conditions = [(f, s, 0) for f, s in NOISE_LEVELS]
    write_table(synthetic_table(fa_ia, signal=2.0, seed=2, conditions=conditions), root / "noise" / "data.parquet")
    return {name: root / name for name in ("signal", "null", "noise")}


def _run(name, data, out, *extra):
    code = experiments.main([name, "--data", str(data), "--out", str(out), *FAST, *extra])
    assert code == 0
    return out


def _read(out, stem):
    table = pd.read_parquet(out / f"{stem}.parquet")
    with open(out / f"{stem}.json", encoding="utf-8") as handle:
        document = json.load(handle)
    return table, document


def _check_outputs(out, name):
    table, document = _read(out, name)
    summary, _ = _read(out, f"{name}_summary")
    image = matplotlib.image.imread(out / f"{name}.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert document["params"]["experiment"] == name
    assert document["seeds"]["seed"] == 0
    assert document["run"]["packages"]["scikit-learn"]
    assert document["data"]["n_trajectories"] > 0 and "Parquet data at" in document["data"]["description"]
    return table, summary


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------

def test_list_and_usage(capsys):
    assert experiments.main(["--list"]) == 0
    listed = capsys.readouterr().out
    for name, description in experiments.list_experiments().items():
        assert name in listed and description in listed
    assert experiments.main([]) == 2
    assert "usage:" in capsys.readouterr().out


def test_module_entry_point_lists_experiments():
    done = subprocess.run([sys.executable, "-m", "lrid_analysis.experiments", "--list"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0
    assert "heldout_task" in done.stdout and "unit_noise" in done.stdout


@pytest.mark.parametrize("argv, expected", [
    (["no_such_experiment"], "available: separability"),
    (["separability", "--classifier", "no_such_classifier"], "registered: random_forest"),
    (["separability", "--observables", "weights"], "sets: weight, act, grad"),
    (["separability", "--filter", "task=no_such_task"], "values present: ['cifar10', 'imagenet']"),
    (["separability", "--filter", "no_such_column=1"], "unknown column 'no_such_column'"),
    (["separability", "--classifier", "random_forest", "--param", "svm.C=1"], "not a classifier of this run"),
])
def test_bad_names_exit_2_with_one_line(argv, expected, data_dirs, tmp_path, capsys):
    extra = ["--data", str(data_dirs["signal"]), "--out", str(tmp_path), "--quiet"] if len(argv) > 1 else []
    assert experiments.main(argv + extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and expected in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_missing_data_exits_1(tmp_path, capsys):
    assert experiments.main(["separability", "--data", str(tmp_path / "nothing"), "--quiet"]) == 1
    assert "no Parquet data" in capsys.readouterr().err


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as exit_info:
        experiments.main(["heldout_task", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "example:" in text and "python -m lrid_analysis.experiments heldout_task" in text


def test_params_parsing():
    parsed = options.parse_params(["n_estimators=10", "svm.C=0.5", "svm.n_components=None"],
                                  ["random_forest", "svm"])
    assert parsed == {"random_forest": {"n_estimators": 10}, "svm": {"n_estimators": 10, "C": 0.5,
                                                                     "n_components": None}}
    assert options.parse_filters(["task=a", "task=b", "batch_size=128"]) == {"task": ["a", "b"],
                                                                             "batch_size": ["128"]}
    sets = options.observable_sets(["grad,actabs_norm,actraw_norm"], ("all",))
    assert list(sets) == ["grad", "actabs_norm+actraw_norm"]
    assert sets["actabs_norm+actraw_norm"] == ["actabs_norm", "actraw_norm"]


# ---------------------------------------------------------------------------
# experiments
# ---------------------------------------------------------------------------

def test_separability_signal_and_null(data_dirs, tmp_path):
    out = _run("separability", data_dirs["signal"], tmp_path / "sig", "--classifier", "random_forest",
               "--splits", "3", "--observables", "weight,grad,all")
    table, summary = _check_outputs(out, "separability")
    assert len(table) == 2 * 3 * 3 and set(summary["observables"]) == {"weight", "grad", "all"}
    assert set(summary["grouping"]) == {"trajectory", "network"}  # both groupings by default
    assert (summary["accuracy_mean"] > 0.8).all()
    # the summary is the mean over splits of the per-split table
    means = table.groupby(["grouping", "observables"])["test_accuracy"].mean()
    keys = list(zip(summary["grouping"], summary["observables"]))
    assert np.allclose(summary["accuracy_mean"], means.loc[keys].to_numpy())
    out = _run("separability", data_dirs["null"], tmp_path / "null", "--classifier", "random_forest",
               "--splits", "3", "--observables", "all")
    _, summary = _check_outputs(out, "separability")
    assert abs(summary["accuracy_mean"].iloc[0] - 0.25) < 0.1


def test_results_match_cross_validate_and_do_not_depend_on_n_jobs(data_dirs):
    view = load_view(data_dirs["signal"])
    kwargs = dict(classifier="random_forest", observables="act", n_splits=2, params={"n_estimators": 10},
                  verbose=False, plot=False)
    one = experiments.get_experiment("separability").run(view, n_jobs=1, **kwargs)
    two = experiments.get_experiment("separability").run(view, n_jobs=2, **kwargs)
    pd.testing.assert_series_equal(one.table["test_accuracy"], two.table["test_accuracy"])
    trajectory = one.table[one.table["grouping"] == "trajectory"]
    sub = features.select(view, "act")
    direct = evaluate.cross_validate(RandomForestClassifier(n_estimators=10, max_features="log2", random_state=0),
                                     features.flatten(sub), sub.y, CategoryBalancedSplit(n_splits=2, random_state=0),
                                     meta=sub, verbose=False)
    assert np.array_equal(trajectory["test_accuracy"].to_numpy(), direct.table["test_accuracy"].to_numpy())
    network = evaluate.cross_validate(RandomForestClassifier(n_estimators=10, max_features="log2", random_state=0),
                                      features.flatten(sub), sub.y, NetworkBalancedSplit(n_splits=2, random_state=0),
                                      meta=sub, verbose=False)
    assert np.array_equal(one.table.loc[one.table["grouping"] == "network", "test_accuracy"].to_numpy(),
                          network.table["test_accuracy"].to_numpy())


def test_resume_reuses_finished_conditions(data_dirs, tmp_path, monkeypatch):
    args = ("--classifier", "random_forest", "--splits", "2", "--observables", "grad")
    _run("separability", data_dirs["signal"], tmp_path, *args)
    first = pd.read_parquet(tmp_path / "separability.parquet")
    assert list((tmp_path / "parts").glob("*.json"))

    def fail(*a, **k):
        raise AssertionError("a finished condition was fitted again")

    monkeypatch.setattr(runner, "fit_and_score", fail)
    _run("separability", data_dirs["signal"], tmp_path, *args)
    second = pd.read_parquet(tmp_path / "separability.parquet")
    pd.testing.assert_frame_equal(first.drop(columns=["fit_seconds", "predict_seconds"]),
                                  second.drop(columns=["fit_seconds", "predict_seconds"]))
    with pytest.raises(AssertionError, match="fitted again"):
        experiments.main(["separability", "--data", str(data_dirs["signal"]), "--out", str(tmp_path), *FAST, *args,
                          "--no-resume", "--debug"])


def test_filter_restricts_the_data(data_dirs, tmp_path, small_meta):
    out = _run("separability", data_dirs["signal"], tmp_path, "--classifier", "random_forest", "--splits", "2",
               "--observables", "grad", "--filter", "task=cifar10")
    _, document = _read(out, "separability")
    assert document["data"]["task"] == {"cifar10": int((small_meta["task"] == "cifar10").sum())}
    assert document["params"]["filters"] == {"task": ["cifar10"]}


def test_confusion_matches_independent_evaluation(data_dirs, tmp_path):
    out = _run("confusion", data_dirs["signal"], tmp_path, "--classifier", "random_forest", "--splits", "2",
               "--observables", "grad")
    _check_outputs(out, "confusion")
    matrices, _ = _read(out, "confusion_matrices")
    view = features.select(load_view(data_dirs["signal"]), "grad")
    direct = evaluate.cross_validate(RandomForestClassifier(n_estimators=10, max_features="log2", random_state=0),
                                     features.flatten(view), view.y, CategoryBalancedSplit(n_splits=2, random_state=0),
                                     meta=view, verbose=False)
    labels = direct.labels
    expected = np.mean([cm / cm.sum(axis=1, keepdims=True) for cm in direct.confusion], axis=0)
    got = matrices.pivot(index="actual", columns="predicted", values="proportion_mean").loc[labels, labels]
    assert np.allclose(got.to_numpy(), expected)
    rates, _ = _read(out, "confusion_pair_rates")
    assert len(rates) == 6 * 2 and rates["confusion_rate"].between(0, 1).all()


def test_confusion_in_the_original_label_order_reports_both_metric_conventions(data_dirs, tmp_path):
    out = _run("confusion", data_dirs["signal"], tmp_path, "--classifier", "random_forest", "--splits", "2",
               "--observables", "grad", "--label-order", "original")
    view = features.select(load_view(data_dirs["signal"]), "grad")
    direct = evaluate.cross_validate(RandomForestClassifier(n_estimators=10, max_features="log2", random_state=0),
                                     features.flatten(view), view.y, CategoryBalancedSplit(n_splits=2, random_state=0),
                                     meta=view, verbose=False)
    order = ["adam", "sgdm", "information", "feedback"]
    cms = [pd.DataFrame(cm, index=direct.labels, columns=direct.labels).loc[order, order].to_numpy()
           for cm in direct.confusion]
    metrics_table, _ = _read(out, "confusion_class_metrics")
    assert metrics_table["label"].tolist() == order
    mean_cm = np.mean(cms, axis=0)
    n = mean_cm.sum()
    for k, label in enumerate(order):  # the original's (sensitivity + specificity) / 2 of the mean matrix
        tp, fn, fp = mean_cm[k, k], mean_cm[k].sum() - mean_cm[k, k], mean_cm[:, k].sum() - mean_cm[k, k]
        expected = (tp / (tp + fn) + (n - tp - fn - fp) / (n - tp - fn)) / 2
        assert np.isclose(metrics_table["balanced_accuracy_original"].iloc[k], expected)
    recall = np.mean([np.diag(cm) / cm.sum(axis=1) for cm in cms], axis=0)
    assert np.allclose(metrics_table["recall_mean"], recall)
    matrices, _ = _read(out, "confusion_matrices")
    assert list(dict.fromkeys(matrices["actual"])) == order


@pytest.mark.parametrize("name, column, n_values", [
    ("heldout_task", "task", 2), ("heldout_architecture", "architecture", 2), ("heldout_curriculum", "curriculum", 6),
])
def test_heldout_experiments(name, column, n_values, data_dirs, tmp_path):
    out = _run(name, data_dirs["signal"], tmp_path, "--splits", "2", "--observables", "grad,all")
    table, summary = _check_outputs(out, name)
    heldout = table[table["kind"] == "heldout"]
    assert heldout[column].nunique() == n_values and len(heldout) == 2 * n_values
    reference = summary[summary["kind"] == "reference"]
    assert len(reference) == 1 and reference["n_splits"].iloc[0] == 2
    assert (heldout["test_accuracy"] > 0.7).all()
    stats_table, _ = _read(out, f"{name}_stats")
    assert set(stats_table["family"]) == {"held-out vs reference", "observable sets vs all (paired by held-out value)"}
    versus = stats_table[stats_table["family"] == "held-out vs reference"]
    assert set(versus["observables"]) == {"grad", "all"}
    assert np.allclose(versus.set_index("observables")["mean_a"],
                       heldout.groupby("observables")["test_accuracy"].mean()[versus["observables"]])


def test_heldout_task_near_chance_without_signal(data_dirs, tmp_path):
    out = _run("heldout_task", data_dirs["null"], tmp_path, "--splits", "2", "--observables", "all",
               "--no-reference")
    table, _ = _read(out, "heldout_task")
    assert set(table["kind"]) == {"heldout"}
    assert abs(table["test_accuracy"].mean() - 0.25) < 0.1


def test_welch_vs_reference_reduces_to_scipy_welch():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.8, 0.05, 4), rng.normal(0.9, 0.02, 10)
    t, df, p = _heldout.welch_vs_reference(a, b, n_train=1.0, n_test=0.0)
    expected = scipy_stats.ttest_ind(a, b, equal_var=False)
    assert np.isclose(t, expected.statistic) and np.isclose(p, expected.pvalue)
    # the correction widens the reference's standard error
    t_corrected, _, p_corrected = _heldout.welch_vs_reference(a, b, n_train=3.0, n_test=1.0)
    assert abs(t_corrected) < abs(t) and p_corrected > p


def test_importance(data_dirs, tmp_path):
    out = _run("importance", data_dirs["signal"], tmp_path, "--splits", "2", "--observables", "act",
               "--repeats", "2")
    _check_outputs(out, "importance")
    per_split, _ = _read(out, "importance_per_split")
    gini = per_split[per_split["method"] == "gini"]
    assert np.allclose(gini.groupby("split")["value"].sum(), 1.0)  # impurity shares of a forest sum to 1
    assert set(gini["group"]) == set(features.resolve_observables("act")) | {"layer_position"}
    summary, _ = _read(out, "importance_summary")
    permutation = summary[summary["method"] == "permutation"].set_index("group")
    assert permutation["importance_mean"].max() > 0.05  # some statistic carries the planted signal
    stats_table, _ = _read(out, "importance_stats")
    assert set(stats_table["family"]) == {"permutation importance > 0"}


def test_trajectory_subsample(data_dirs, tmp_path):
    grid = trajectory_subsample.subsample_grid(21)
    expected = {(p, n) for p in (1, 2, 3, 5) for n in (2, 3, 5, 7, 11) if (n - 1) * p <= 20} | {(1, 21)}
    assert set(grid) == expected and len(grid) == 18
    out = _run("trajectory_subsample", data_dirs["signal"], tmp_path, "--splits", "2", "--observables", "grad",
               "--periods", "1,5", "--samples", "2,5")
    table, summary = _check_outputs(out, "trajectory_subsample")
    assert set(zip(summary["period"], summary["n_samples"])) == {(1, 2), (1, 5), (5, 2), (5, 5), (1, 21)}
    assert summary.loc[summary["n_samples"] == 21, "proportion"].iloc[0] == 1.0
    assert (summary["period_epochs"] == summary["period"] * 5.0).all()  # synthetic checkpoints are 5 epochs apart
    # with a signal growing along training, five spread-out samples beat two consecutive ones
    acc = summary.set_index(["period", "n_samples"])["accuracy_mean"]
    assert acc[(5, 5)] > acc[(1, 2)]


def test_trajectory_window(data_dirs, tmp_path):
    out = _run("trajectory_window", data_dirs["signal"], tmp_path, "--splits", "2", "--observables", "grad")
    table, summary = _check_outputs(out, "trajectory_window")
    assert len(summary) == 9 and summary["same_window"].sum() == 3
    acc = summary.set_index(["train_window", "test_window"])["accuracy_mean"]
    # the planted effect grows along training: a late-trained classifier fails on early features
    assert acc[("late", "late")] > acc[("late", "early")] + 0.2
    stats_table, _ = _read(out, "trajectory_window_stats")
    assert len(stats_table) == 6 and (stats_table["condition_b"] == stats_table["train_window"]).all()


def test_trajectory_average(data_dirs, tmp_path):
    out = _run("trajectory_average", data_dirs["signal"], tmp_path, "--splits", "2", "--observables", "act",
               "--classifier", "random_forest")
    table, summary = _check_outputs(out, "trajectory_average")
    assert set(summary["trajectory"]) == {"full", "average"}
    assert (summary["accuracy_mean"] > 0.5).all()


def test_pairwise(data_dirs, tmp_path):
    out = _run("pairwise", data_dirs["signal"], tmp_path, "--splits", "2", "--observables", "grad")
    table, summary = _check_outputs(out, "pairwise")
    assert len(summary) == 6 and set(table["n_test"]) == {2 * 36}  # 25% of 144 trajectories per rule, two rules
    assert (summary["accuracy_mean"] > 0.8).all()
    out = _run("pairwise", data_dirs["null"], tmp_path / "null", "--splits", "2", "--observables", "grad")
    summary, _ = _read(out, "pairwise_summary")
    assert abs(summary["accuracy_mean"].mean() - 0.5) < 0.1


def test_unit_noise_accuracy_falls_with_noise(data_dirs, tmp_path):
    out = _run("unit_noise", data_dirs["noise"], tmp_path, "--splits", "3", "--observables", "act")
    table, summary = _check_outputs(out, "unit_noise")
    assert set(zip(summary["unit_fraction"], summary["noise_std"])) == set(NOISE_LEVELS)
    assert set(table["obs_seed"]) == {0} and len(table) == 4 * 3
    acc = summary.set_index(["unit_fraction", "noise_std"])["accuracy_mean"]
    assert acc[(1.0, 0.0)] > 0.9
    assert acc[(1.0, 0.0)] > acc[(0.3, 3.0)] + 0.15
    assert acc[(0.3, 0.0)] > acc[(0.3, 3.0)] and acc[(1.0, 3.0)] > acc[(0.3, 3.0)]
    assert summary.loc[summary["full_access"], "unit_fraction"].tolist() == [1.0]
    stats_table, _ = _read(out, "unit_noise_stats")
    assert len(stats_table) == 3 and (stats_table["condition_b"] == "units=1, noise=0").all()


def test_unit_noise_same_command_twice_resumes(data_dirs, tmp_path, capsys):
    # the run appended to its data description after the --out manifest check, so the same command was refused
    _run("unit_noise", data_dirs["noise"], tmp_path, "--splits", "2", "--observables", "act", "--no-plot")
    capsys.readouterr()
    _run("unit_noise", data_dirs["noise"], tmp_path, "--splits", "2", "--observables", "act", "--no-plot")
    assert "reused" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["trajectory_subsample", "trajectory_window"])
def test_same_command_twice_resumes_when_the_run_derives_values(name, data_dirs, tmp_path, capsys):
    # the derived grid / windows were added to the settings after the --out manifest check, so the same
    # command was refused the second time; they are recorded under "derived", not compared
    extra = ("--splits", "2", "--observables", "grad", "--no-plot", "--classifier", "random_forest")
    _run(name, data_dirs["signal"], tmp_path, *extra)
    capsys.readouterr()
    _run(name, data_dirs["signal"], tmp_path, *extra)
    assert "reused" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert ("grid" if name == "trajectory_subsample" else "windows") in manifest["derived"]


def test_unit_noise_without_grid_exits_1(data_dirs, tmp_path, capsys):
    code = experiments.main(["unit_noise", "--data", str(data_dirs["signal"]), "--out", str(tmp_path), *FAST])
    assert code == 1
    err = capsys.readouterr().err
    assert "no unit-subsampling / measurement-noise grid" in err and "Traceback" not in err


def test_python_api_accepts_a_table_and_writes_nothing_without_out(data_dirs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    table = pd.read_parquet(data_dirs["signal"] / "data.parquet")
    result = experiments.get_experiment("pairwise").run(table, classifier="logistic", observables="grad",
                                                        n_splits=2, selection="off", verbose=False)
    assert isinstance(result, experiments.ExperimentResult) and result.paths == {}
    assert list(tmp_path.iterdir()) == []
    assert result.figure() is not None and "rule_pair" in result.summary.columns
    assert "Adam vs FA" in result.to_string()


def test_dotted_classifier_path(data_dirs, tmp_path):
    assert experiments.main(["separability", "--data", str(data_dirs["signal"]), "--out", str(tmp_path), "--quiet",
                             "--n-jobs", "1", "--classifier", "sklearn.tree:DecisionTreeClassifier", "--splits", "2",
                             "--observables", "grad", "--param", "max_depth=3"]) == 0
    table, document = _read(tmp_path, "separability")
    assert set(table["classifier"]) == {"sklearn.tree:DecisionTreeClassifier"}
    settings = document["params"]["classifier_settings"]["sklearn.tree:DecisionTreeClassifier"]
    assert settings["class"].endswith("DecisionTreeClassifier") and settings["params"]["max_depth"] == 3
    assert settings["params"]["random_state"] == 0


@pytest.fixture(scope="module")
def network_shortcut_dir(tmp_path_factory, small_meta):
    """No rule signal, but a per-network offset shared by all layers of a network (a network fingerprint)."""
    table = synthetic_table(small_meta, signal=0.0, seed=3)
    names = options.observable_sets("grad", ["grad"])["grad"]
    rng = np.random.RandomState(4)
    runs = sorted(table["run_id"].unique())
    offsets = pd.DataFrame(20.0 * rng.normal(size=(len(runs), len(names))), index=runs, columns=names)
    table[names] = table[names].to_numpy() + offsets.loc[table["run_id"]].to_numpy()
    path = tmp_path_factory.mktemp("shortcut") / "data.parquet"
    write_table(table, path)
    return path.parent


def test_network_grouping_removes_a_planted_network_shortcut(network_shortcut_dir, tmp_path):
    out = _run("separability", network_shortcut_dir, tmp_path / "sep", "--classifier", "random_forest",
               "--splits", "3", "--observables", "grad")
    _, summary = _check_outputs(out, "separability")
    accuracy = summary.set_index("grouping")["accuracy_mean"]
    assert accuracy["trajectory"] > 0.8  # layers of a test network were seen in training
    assert abs(accuracy["network"] - 0.25) < 0.12  # no rule signal to find across networks
    # any other experiment: the default is the paper's trajectory draw, --grouping network removes the shortcut
    default = _run("confusion", network_shortcut_dir, tmp_path / "c0", "--classifier", "random_forest",
                   "--splits", "3", "--observables", "grad")
    grouped = _run("confusion", network_shortcut_dir, tmp_path / "c1", "--classifier", "random_forest",
                   "--splits", "3", "--observables", "grad", "--grouping", "network")
    (table0, doc0), (table1, doc1) = _read(default, "confusion"), _read(grouped, "confusion")
    assert "grouping" not in doc0["params"] and doc1["params"]["grouping"] == "network"
    assert table0["test_accuracy"].mean() > 0.8
    assert abs(table1["test_accuracy"].mean() - 0.25) < 0.12


def test_separability_without_enough_networks_reports_the_trajectory_grouping(small_meta, tmp_path, capsys):
    table = synthetic_table(small_meta, signal=2.0, seed=0)
    table = table[table["run_id"].isin(table.groupby("learning_rule")["run_id"].min())]  # one network per rule
    write_table(table, tmp_path / "data.parquet")
    view = load_view(tmp_path / "data.parquet")
    run = experiments.get_experiment("separability").run
    result = run(view, classifier="random_forest", observables="grad", n_splits=2, params={"n_estimators": 10},
                 progress=False, plot=False)
    assert set(result.table["grouping"]) == {"trajectory"}
    assert "no network-grouped splits" in capsys.readouterr().out
    with pytest.raises(experiments.ExperimentError, match="grouping network"):
        run(view, classifier="random_forest", observables="grad", n_splits=2, grouping="network", verbose=False,
            plot=False)


def test_performance_control_matching_removes_the_performance_signal(curve_dir, tmp_path, capsys):
    out = _run("performance_control", curve_dir, tmp_path, "--splits", "5", "--observables", "grad")
    printed = capsys.readouterr().out
    assert "performance-matched networks kept" in printed
    _check_outputs(out, "performance_control")
    _, summary = _check_outputs(out, "performance_control")
    acc = summary.set_index(["networks", "features"])["accuracy_mean"]
    assert acc["all", "grad"] > 0.9 and acc["matched", "grad"] > 0.75  # the observables' signal survives matching
    assert acc["all", "learning_curve"] > 0.65  # final accuracy tells the rules apart on all networks...
    assert abs(acc["matched", "learning_curve"] - 0.5) < 0.15  # ...not on performance-matched ones
    assert (summary["accuracy_ci_low"] <= summary["accuracy_mean"]).all()
    cells, _ = _read(out, "performance_control_cells")
    per_cell = cells.pivot_table(index=["task", "bin"], columns="learning_rule", values="n_kept")
    assert (per_cell["adam"] == per_cell["sgdm"]).all()  # equal numbers per rule in every cell
    shared = cells.pivot_table(index=["task", "bin"], columns="learning_rule", values="n_available")
    assert ((per_cell["adam"] > 0) == ((shared["adam"] > 0) & (shared["sgdm"] > 0))).all()
    assert set(cells["bin"][cells["n_kept"] > 0]) <= {"[0.50, 0.60)", "[0.60, 0.70)"}  # the overlap of the rules
    _, document = _read(out, "performance_control")
    assert document["params"]["grouping"] == "network"


def test_performance_control_without_learning_curves_says_so(data_dirs, tmp_path, capsys):
    out = _run("performance_control", data_dirs["signal"], tmp_path, "--splits", "2", "--observables", "grad")
    assert "has no learning curves" in capsys.readouterr().out
    table, _ = _read(out, "performance_control")
    assert set(table["features"]) == {"grad"} and set(table["networks"]) == {"all"}


def test_performance_control_runs_on_the_tiny_preset_sweep(tiny_sweep, tmp_path, capsys):
    """End to end: the generator's learning curves reach the control (one network per rule: trajectory splits)."""
    out = _run("performance_control", tiny_sweep, tmp_path / "t", "--splits", "2", "--bins", "2",
               "--grouping", "trajectory")
    table, document = _read(out, "performance_control")
    assert {"all", "learning_curve"} <= set(table["features"]) and document["params"]["bins"] == 2
    capsys.readouterr()
    code = experiments.main(["performance_control", "--data", str(tiny_sweep), "--out", str(tmp_path / "n"), *FAST])
    assert code == 1 and "at least 2 networks per rule" in capsys.readouterr().err
