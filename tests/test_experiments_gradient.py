"""--gradient (lrid_analysis.experiments.gradient): gradavg, gradfwd or both in separability and importance.

The planted signal of the B-artifact: ``synthetic_table(..., feedback_artifact=...)``
offsets FA / IA's gradavg at every checkpoint (checkpoint 0 included, before any
learning), while gradfwd, the gradient through the forward weights, carries no
rule at all (and no other observable does: signal 0).
"""

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from lrid_analysis import experiments
from lrid_analysis.dataset import load_view, write_table
from lrid_analysis.experiments.gradient import (
    forward_gradient_recorded,
    gradient_sets,
    resolve_gradient,
)
from lrid_analysis.observables import (
    FORWARD_GRADIENT_NAMES,
    FORWARD_SETS,
    OBSERVABLE_SETS,
)
from lrid_analysis.synthetic import synthetic_table

FAST = ["--param", "n_estimators=20", "--n-jobs", "1", "--quiet", "--no-plot"]


@pytest.fixture(scope="module")
def artifact_dir(tmp_path_factory, small_meta):
    root = tmp_path_factory.mktemp("gradient")
    write_table(synthetic_table(small_meta, signal=0.0, seed=3, forward_gradient=True, feedback_artifact=3.0),
                root / "artifact" / "data.parquet")
    write_table(synthetic_table(small_meta, signal=2.0, seed=0), root / "old" / "data.parquet")  # no gradfwd
    return root


def _run(name, data, out, *extra):
    assert experiments.main([name, "--data", str(data), "--out", str(out), *FAST, *extra]) == 0
    return out


def _read(out, stem):
    with open(out / f"{stem}.json", encoding="utf-8") as handle:
        return pd.read_parquet(out / f"{stem}.parquet"), json.load(handle)


def test_gradient_sets_replace_or_add_the_forward_variants():
    assert list(gradient_sets(["weight", "act", "grad", "all"], "gradavg")) == ["weight", "act", "grad", "all"]
    assert list(gradient_sets(["weight", "grad", "all"], "gradfwd")) == ["weight", "gradfwd", "all_fwd"]
    both = gradient_sets("grad,all", "both")
    assert list(both) == ["grad", "gradfwd", "all", "all_fwd"]
    assert both["all_fwd"] == list(OBSERVABLE_SETS["all_fwd"])
    assert list(gradient_sets(["act", "actabs_norm"], "both")) == ["act", "actabs_norm"]  # nothing to replace
    with pytest.raises(experiments.ExperimentError, match="unknown gradient 'fwd'"):
        resolve_gradient("fwd", "embedded")


def test_forward_gradient_recorded(artifact_dir, small_meta):
    assert forward_gradient_recorded(artifact_dir / "artifact")
    assert not forward_gradient_recorded(artifact_dir / "old")
    assert forward_gradient_recorded("embedded")  # the shipped v2 data record it
    assert not forward_gradient_recorded(artifact_dir / "nowhere")  # the run's loading names that problem
    table = synthetic_table(small_meta.head(40), forward_gradient=True)
    assert forward_gradient_recorded(table)
    assert not forward_gradient_recorded(table.drop(columns=list(FORWARD_GRADIENT_NAMES)))
    one_rule = table.assign(gradfwdabs_id=np.where(table["learning_rule"] == "adam", table["gradfwdabs_id"], np.nan))
    assert forward_gradient_recorded(one_rule) and not forward_gradient_recorded(one_rule, ["learning_rule=sgdm"])
    view = load_view(artifact_dir / "artifact", "all_fwd")
    assert forward_gradient_recorded(view) and not forward_gradient_recorded(view.select_observables("act"))


def test_separability_shows_the_feedback_weight_artifact_of_gradavg(artifact_dir, tmp_path):
    out = _run("separability", artifact_dir / "artifact", tmp_path, "--classifier", "random_forest", "--splits", "6",
               "--grouping", "trajectory")
    summary, document = _read(out, "separability_summary")
    assert document["params"]["gradient"] == "both"
    accuracy = summary.set_index("observables")["accuracy_mean"]
    assert list(accuracy.index) == ["weight", "act", "grad", "gradfwd", "all", "all_fwd"]
    # gradavg tells FA/IA from SGDM/Adam (2 of 4 classes: ~50%); gradfwd and the rest carry no rule (25%)
    assert accuracy["grad"] > 0.42 and accuracy["all"] > 0.42
    for chance_level in ("weight", "act", "gradfwd", "all_fwd"):
        assert abs(accuracy[chance_level] - 0.25) < 0.1
    stats, _ = _read(out, "separability_stats")
    pairs = stats[stats["family"] == "gradfwd vs gradavg"].set_index("set")
    assert sorted(pairs.index) == ["all", "grad"]
    assert (pairs["condition_a"] == "gradfwd").all() and (pairs["condition_b"] == "gradavg").all()
    for paper, forward in FORWARD_SETS.items():
        assert pairs.loc[paper, "difference"] == pytest.approx(accuracy[forward] - accuracy[paper], abs=1e-9)
        assert pairs.loc[paper, "difference"] < -0.15 and pairs.loc[paper, "p_holm"] < 0.05
    # the vs-all family keeps the paper's sets
    vs_all = stats[stats["family"] == "observables vs all"]
    assert set(vs_all["condition_a"]) | set(vs_all["condition_b"]) == {"weight", "act", "grad", "all"}


def test_the_artifact_is_there_at_checkpoint_0(artifact_dir):
    view = load_view(artifact_dir / "artifact", "all45,gradfwd")
    before_learning = replace(view, X=view.X[:, :1], epochs=view.epochs[:, :1])
    result = experiments.get_experiment("separability").run(
        before_learning, classifier="random_forest", observables="grad", n_splits=4, grouping="trajectory",
        params={"n_estimators": 20}, verbose=False, plot=False)
    accuracy = result.summary.set_index("observables")["accuracy_mean"]
    assert accuracy["grad"] > 0.42 and abs(accuracy["gradfwd"] - 0.25) < 0.1


def test_importance_ranks_with_both_gradients(artifact_dir, tmp_path):
    out = _run("importance", artifact_dir / "artifact", tmp_path, "--splits", "3", "--repeats", "2")
    summary, document = _read(out, "importance_summary")
    assert document["params"]["gradient"] == "both"
    assert set(summary["observables"]) == {"all", "all_fwd"}
    ranking, _ = _read(out, "importance_ranking")
    assert list(ranking.columns) == ["method", "rank", "all", "all_fwd"]
    top = ranking.set_index(["method", "rank"])["all"]
    # gradavg's three statistics lead the paper's Gini ranking; permuting one of the three (redundant) still
    # costs the most accuracy
    assert set(top.loc["gini"].loc[1:3]) == {"gradavgabs_id", "gradavgraw_id", "gradavgsq_id"}
    assert top.loc[("permutation", 1)].startswith("gradavg")
    perm = summary[summary["method"] == "permutation"].set_index(["observables", "group"])["importance_mean"]
    assert perm.loc["all"].loc[["gradavgabs_id", "gradavgraw_id", "gradavgsq_id"]].max() > 0.03
    assert perm.loc["all_fwd"].loc[list(FORWARD_GRADIENT_NAMES)].max() < 0.03  # no rule through W
    rank = summary.set_index(["observables", "method", "group"])["rank"]
    assert rank.loc[("all", "gini")].min() == 1 and rank.loc[("all_fwd", "gini")].max() == 25  # 24 + layer position
    stats, _ = _read(out, "importance_stats")
    assert set(stats["observables"]) == {"all", "all_fwd"}


def test_data_without_gradfwd_runs_as_the_paper_and_says_so_once(artifact_dir, tmp_path, capsys):
    old = artifact_dir / "old"
    _run("separability", old, tmp_path / "auto", "--classifier", "random_forest", "--splits", "2",
         "--grouping", "trajectory", "--observables", "grad,all")
    printed = capsys.readouterr().out
    assert printed.count("no forward-Jacobian recording") == 1 and "gradavg only" in printed
    _run("separability", old, tmp_path / "paper", "--classifier", "random_forest", "--splits", "2",
         "--grouping", "trajectory", "--observables", "grad,all", "--gradient", "gradavg")
    auto, auto_doc = _read(tmp_path / "auto", "separability_summary")
    paper, paper_doc = _read(tmp_path / "paper", "separability_summary")
    pd.testing.assert_frame_equal(auto, paper)
    assert "gradient" not in auto_doc["params"] and auto_doc["params"] == paper_doc["params"]
    assert set(auto["observables"]) == {"grad", "all"}
    for extra in (["--gradient", "both"], ["--gradient", "gradfwd"], ["--observables", "gradfwd"]):
        code = experiments.main(["importance", "--data", str(old), "--out", str(tmp_path / "x"), *FAST, *extra])
        assert code == 1
        assert "this data has no forward-Jacobian recording" in capsys.readouterr().err


def test_importance_takes_one_set_before_the_gradient_variant(artifact_dir, tmp_path, capsys):
    code = experiments.main(["importance", "--data", str(artifact_dir / "artifact"), "--out", str(tmp_path), *FAST,
                             "--observables", "grad,act"])
    assert code == 2 and "importance takes one observable set (got grad, act)" in capsys.readouterr().err
