"""The ``design`` experiment on a synthetic grid whose planted signal fades with noise and with fewer units."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from lrid_analysis import experiments
from lrid_analysis.dataset import write_table
from lrid_analysis.experiments import design
from lrid_analysis.experiments.cli import build_parser
from lrid_analysis.synthetic import synthetic_table

FRACTIONS, NOISES = (0.1, 1.0), (0.0, 3.0)
FAST = {"observables": "act", "n_splits": 3, "n_jobs": 1, "grid_samples": (3,), "grid_periods": (2,),
        "verbose": False, "progress": False, "plot": False}
N_CHECKPOINTS = 7


def _grid_table(small_meta, sizes=True, conditions=None):
    """12 KNet networks per rule (4 layers each); FA and IA measured on the units x noise grid.

    ``synthetic_table`` scales the planted rule effect by ``unit_fraction / (1 + noise_std)``; SGDM and Adam
    keep their full-access rows only, as in generated data.
    """
    meta = small_meta[(small_meta["task"] == "cifar10") & (small_meta["architecture"] == "knet")].copy()
    meta = meta.reset_index(drop=True)
    if sizes:
        position = meta["layer_position_inferred"].astype(str)
        meta["n_outputs"] = position.map({"early": 64, "middle": 128, "deep": 256}).astype("int64")
        meta["n_inputs"] = position.map({"early": 27, "middle": 64, "deep": 128}).astype("int64")
        meta["n_weights"] = meta["n_inputs"] * meta["n_outputs"]
    if conditions is None:
        conditions = [(f, s, 0) for f in FRACTIONS for s in NOISES]
    table = synthetic_table(meta, n_checkpoints=N_CHECKPOINTS, signal=1.5, seed=0, conditions=conditions)
    on_grid = (table["unit_fraction"] < 1) | (table["noise_std"] > 0)
    return table[~(on_grid & table["learning_rule"].isin(["sgdm", "adam"]))].reset_index(drop=True)


@pytest.fixture(scope="module")
def grid_table(small_meta):
    return _grid_table(small_meta)


@pytest.fixture(scope="module")
def result(grid_table):
    return design.run(grid_table, measure="act", fraction=0.3, noise=1.5, **FAST)


def _accuracy(summary, fraction, noise, period, n_samples):
    row = summary[(summary["unit_fraction"] == fraction) & (summary["noise_std"] == noise)
                  & (summary["period"] == period) & (summary["n_samples"] == n_samples)]
    assert len(row) == 1
    return float(row["accuracy_mean"].iloc[0])


def test_accuracy_falls_with_noise_and_rises_with_units(result):
    summary = result.summary
    assert set(zip(summary["period"], summary["n_samples"])) == {(2, 3), (1, N_CHECKPOINTS)}
    for period, n in [(2, 3), (1, N_CHECKPOINTS)]:
        full = _accuracy(summary, 1.0, 0.0, period, n)
        assert full > _accuracy(summary, 1.0, 3.0, period, n) + 0.1  # noise hurts
        assert full > _accuracy(summary, 0.1, 0.0, period, n) + 0.2  # fewer units hurt
        noiseless = np.mean([_accuracy(summary, f, 0.0, period, n) for f in FRACTIONS])
        noisy = np.mean([_accuracy(summary, f, 3.0, period, n) for f in FRACTIONS])
        assert noiseless > noisy
    assert (summary["accuracy_ci_low"] <= summary["accuracy_mean"]).all()
    assert (summary["accuracy_ci_high"] >= summary["accuracy_mean"]).all()


def test_splits_are_network_grouped_by_default(grid_table):
    parser = build_parser(design)
    args = parser.parse_args([])
    assert args.grouping == "network" and args.splits == design.SPLITS_DEFAULT


def test_units_per_layer_from_layer_sizes(result, grid_table):
    summary = result.summary
    act = grid_table.drop_duplicates(["run_id", "layer_name"])
    act = act[act["learning_rule"].isin(["feedback", "information"])]
    for fraction in FRACTIONS:
        expected = np.median(np.ceil(fraction * act["n_outputs"].to_numpy()))
        got = summary.loc[summary["unit_fraction"] == fraction, "units_median"].unique()
        assert got.tolist() == [expected]
    row = summary.iloc[0]
    assert row["cost"] == row["units_median"] * row["n_samples"]


def test_point_between_levels_is_interpolated_split_by_split(result):
    point = result.tables["point"]
    assert len(point) == 1
    p = point.iloc[0]
    assert p["status"] == "interpolated" and p["n_samples"] == N_CHECKPOINTS and p["period"] == 1
    by_split = result.tables["by_split"]
    w_units = math.log(0.3 / 0.1) / math.log(1.0 / 0.1)  # weight of fraction 1, log scale
    w_noise = 1.5 / 3.0
    scores = 0.0
    for fraction, wf in ((0.1, 1 - w_units), (1.0, w_units)):
        for noise, wn in ((0.0, 1 - w_noise), (3.0, w_noise)):
            part = by_split[(by_split["unit_fraction"] == fraction) & (by_split["noise_std"] == noise)
                            & (by_split["period"] == 1) & (by_split["n_samples"] == N_CHECKPOINTS)]
            scores = scores + wf * wn * part.sort_values("split")["test_accuracy"].to_numpy()
    J = len(scores)
    n_train, n_test = by_split["n_train"].mean(), by_split["n_test"].mean()
    half = scipy_stats.t.ppf(0.975, J - 1) * math.sqrt((1 / J + n_test / n_train) * np.var(scores, ddof=1))
    assert p["accuracy_mean"] == pytest.approx(scores.mean())
    assert p["accuracy_ci_low"] == pytest.approx(max(scores.mean() - half, 0.0))
    assert p["accuracy_ci_high"] == pytest.approx(min(scores.mean() + half, 1.0))
    assert p["nearest"].count("fraction") == 4


def test_point_on_a_level_is_the_measured_value(result):
    summary, by_split = result.summary, result.tables["by_split"]
    point = design.resolve_point({"fraction": 1.0, "noise": 3.0, "samples": 3, "period": 2}, N_CHECKPOINTS, ["act"])
    out = design.evaluate_point(by_split, summary, point, "act", True)
    assert out["status"] == "measured"
    assert out["accuracy_mean"] == pytest.approx(_accuracy(summary, 1.0, 3.0, 2, 3))
    units = design.resolve_point({"units": float(summary.loc[summary["unit_fraction"] == 1.0, "units_median"].iloc[0]),
                                  "samples": 3, "period": 2}, N_CHECKPOINTS, ["act"])
    out = design.evaluate_point(by_split, summary, units, "act", True)
    assert out["status"] == "measured"
    assert out["accuracy_mean"] == pytest.approx(_accuracy(summary, 1.0, 0.0, 2, 3))


@pytest.mark.parametrize("options, reason", [
    ({"fraction": 0.05}, "unit fraction 0.05 is outside"),
    ({"noise": 5.0}, "noise 5 is outside"),
    ({"units": 5000.0}, "5000 units per layer is outside"),
    ({"samples": 5, "period": 2}, "need 9 checkpoints"),
])
def test_points_outside_the_grid_are_flagged_not_extrapolated(result, options, reason):
    point = design.resolve_point(options, N_CHECKPOINTS, ["act"])
    out = design.evaluate_point(result.tables["by_split"], result.summary, point, "act", True)
    assert out["status"] == "outside grid"
    assert reason in out["reason"]
    assert np.isnan(out["accuracy_mean"]) and np.isnan(out["accuracy_ci_low"])
    text = design.report_text(result.tables["frontier"], pd.DataFrame([out]), 0.9, True)
    assert "OUTSIDE THE GRID" in text


def test_frontier_picks_the_cheapest_point_reaching_the_target():
    summary = pd.DataFrame({
        "observables": "act", "noise_std": 0.0,
        "unit_fraction": [1.0, 1.0, 0.1, 0.1, 0.5],
        "n_samples": [2, 21, 2, 10, 2],
        "accuracy_mean": [0.93, 0.99, 0.70, 0.91, 0.95],
    })
    summary["cost"] = summary["unit_fraction"] * summary["n_samples"]  # 2, 21, 0.2, 1.0, 1.0
    front = design.frontier(summary, 0.9)
    # cost 0.2 misses the target; cost 1.0 twice: the more accurate (fraction 0.5, 95%) wins
    assert front[["unit_fraction", "n_samples", "reached"]].values.tolist() == [[0.5, 2, True]]
    missed = design.frontier(summary, 0.995)
    assert missed["reached"].tolist() == [False] and missed["accuracy_mean"].tolist() == [0.99]


def test_frontier_of_a_run_is_the_cheapest_by_brute_force(result):
    front, summary = result.tables["frontier"], result.summary
    assert len(front) == len(NOISES)
    for _, row in front.iterrows():
        same = summary[(summary["observables"] == row["observables"]) & (summary["noise_std"] == row["noise_std"])]
        reaching = same[same["accuracy_mean"] >= 0.9]
        if row["reached"]:
            assert row["cost"] == reaching["cost"].min()
        else:
            assert reaching.empty and row["accuracy_mean"] == same["accuracy_mean"].max()


def test_rules_without_grid_rows_fall_back_to_full_access(grid_table, capsys):
    out = design.run(grid_table, rules="all", **{**FAST, "verbose": True})
    printed = capsys.readouterr().out
    assert "covers rules feedback, information only" in printed and "sgdm" in printed
    assert set(zip(out.summary["unit_fraction"], out.summary["noise_std"])) == {(1.0, 0.0)}
    assert out.params["rules"] == "all"
    assert (out.summary["accuracy_mean"] > 0.5).all()  # 4 rules, chance 0.25, planted signal at full access


def test_data_without_a_grid_exits_1_with_a_clear_message(small_meta, tmp_path, capsys):
    table = _grid_table(small_meta, conditions=[(1.0, 0.0, 0)])
    write_table(table, tmp_path / "data" / "data.parquet")
    code = experiments.main(["design", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
                             "--quiet", "--n-jobs", "1"])
    assert code == 1
    err = capsys.readouterr().err
    assert "no unit-subsampling / measurement-noise grid" in err and len(err.strip().splitlines()) == 1


def test_units_need_layer_sizes(small_meta):
    table = _grid_table(small_meta, sizes=False)
    with pytest.raises(experiments.ExperimentError, match="absolute units are unavailable"):
        design.run(table, units=100, **FAST)
    out = design.run(table, **FAST)  # fractions only: cost = fraction x samples
    assert "units_median" not in out.summary.columns
    assert np.allclose(out.summary["cost"], out.summary["unit_fraction"] * out.summary["n_samples"])


def test_command_line_writes_the_tables_and_the_figure(grid_table, tmp_path, capsys):
    write_table(grid_table, tmp_path / "data" / "data.parquet")
    out = tmp_path / "out"
    argv = ["design", "--data", str(tmp_path / "data"), "--out", str(out), "--observables", "act", "--splits", "2",
            "--grid-samples", "3", "--grid-periods", "2", "--param", "n_estimators=10", "--n-jobs", "1", "--quiet",
            "--measure", "act", "--units", "100", "--noise", "1", "--samples", "4", "--period", "2"]
    assert experiments.main(argv) == 0
    printed = capsys.readouterr().out
    assert "frontier: cheapest recording reaching 90%" in printed and "your point:" in printed
    for name in ("design.parquet", "design_summary.parquet", "design_frontier.parquet", "design_point.parquet",
                 "design_by_split.parquet", "design.png", "manifest.json", "README.md"):
        assert (out / name).is_file(), name
    point = pd.read_parquet(out / "design_point.parquet")
    assert point["n_samples"].tolist() == [4] and point["status"].tolist() == ["interpolated"]
    summary = pd.read_parquet(out / "design_summary.parquet")
    assert (2, 4) in set(zip(summary["period"], summary["n_samples"]))  # the point's sampling is measured
    # the same command again resumes from the cached fits (the manifest check once refused it: the run
    # added to its settings and data description after checking them)
    assert experiments.main(argv) == 0
    captured = capsys.readouterr()
    assert "reused" in captured.out and "other settings" not in captured.err


def test_bad_point_options_exit_2(grid_table, tmp_path, capsys):
    write_table(grid_table, tmp_path / "data" / "data.parquet")
    code = experiments.main(["design", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
                             "--quiet", "--units", "10", "--fraction", "0.5"])
    assert code == 2
    assert "--units or --fraction" in capsys.readouterr().err


def test_figure_marks_the_point_inside_and_outside_the_grid():
    from lrid_analysis import plots

    summary = pd.DataFrame([{"observables": m, "unit_fraction": f, "noise_std": s, "period": 1, "n_samples": 5,
                             "accuracy_mean": 0.8} for m in ("weight", "act") for f in (0.01, 0.1, 1.0)
                            for s in (0.0, 1.0)])
    point = pd.DataFrame([
        {"observables": "act", "period": 1, "n_samples": 5, "grid_unit_fraction": math.sqrt(0.1),
         "grid_noise_std": 0.25, "status": "interpolated"},
        {"observables": "weight", "period": 1, "n_samples": 5, "grid_unit_fraction": 0.01, "grid_noise_std": 1.0,
         "status": "outside grid"},
    ])
    fig = plots.design_heatmaps(summary, point=point)
    weight_ax, act_ax = fig.axes[:2]
    (star,) = [line for line in act_ax.get_lines() if line.get_marker() == "*"]
    # fractions bottom to top (0.01, 0.1, 1): sqrt(0.1) is halfway between rows 1 and 2 on a log axis;
    # noise left to right (1, 0): 0.25 is a quarter of the way from column 1 (noise 0) to column 0
    assert star.get_xdata()[0] == pytest.approx(0.75) and star.get_ydata()[0] == pytest.approx(1.5)
    (cross,) = [line for line in weight_ax.get_lines() if line.get_marker() == "x"]
    assert (cross.get_xdata()[0], cross.get_ydata()[0]) == (0.0, 0.0)
    assert any(t.get_text() == "outside grid" for t in weight_ax.texts)


def test_default_forest_has_50_trees_unless_given(result):
    assert result.params["classifier_settings"]["random_forest"]["params"]["n_estimators"] == \
        design.DEFAULT_N_ESTIMATORS
    assert design._with_default_trees(None) == ["n_estimators=50"]
    assert design._with_default_trees(["max_depth=3"]) == ["n_estimators=50", "max_depth=3"]
    assert design._sets_n_estimators(["random_forest.n_estimators=7"])
    assert design._sets_n_estimators({"random_forest": {"n_estimators": 7}})
    assert not design._sets_n_estimators(["max_depth=3"])
