"""Tests of lrid_analysis.importance: grouped Gini and permutation importance."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from lrid_analysis.classifiers import OOBForestSelection
from lrid_analysis.features import feature_groups
from lrid_analysis.importance import (
    forest_of,
    gini_importance,
    permutation_importance,
    summarize_importance,
)
from lrid_analysis.trajectories import Flatten

OBSERVABLES = ["weightabs_mean", "weightraw_norm", "actabs_median", "actraw_mean", "gradavgraw_id"]
N_CKPT = 5
PLANTED = "actabs_median"


def planted_data(n=400, seed=0):
    """Flat layout; only PLANTED's trajectory depends on the (binary) label."""
    rng = np.random.default_rng(seed)
    y = np.where(rng.random(n) < 0.5, "adam", "sgdm")
    seq = rng.normal(size=(n, len(OBSERVABLES), N_CKPT))
    j = OBSERVABLES.index(PLANTED)
    seq[:, j, :] += np.where(y == "adam", 1.0, -1.0)[:, None] * np.linspace(0.2, 1.0, N_CKPT)[None, :]
    onehot = np.eye(3)[rng.integers(0, 3, n)]
    return np.hstack([seq.reshape(n, -1), onehot]), y


def two_splits(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(2):
        perm = rng.permutation(n)
        out.append((perm[: 3 * n // 4], perm[3 * n // 4:]))
    return out


@pytest.fixture(scope="module")
def fitted():
    X, y = planted_data()
    splits = two_splits(len(y))
    forests = [RandomForestClassifier(n_estimators=30, random_state=s, n_jobs=1).fit(X[tr], y[tr])
               for s, (tr, _) in enumerate(splits)]
    return X, y, splits, forests


def test_gini_planted_statistic_is_most_important_and_groups_sum_to_one(fitted):
    X, y, splits, forests = fitted
    table = gini_importance(forests, OBSERVABLES, N_CKPT)
    assert table["group"].tolist() == OBSERVABLES + ["layer_position"]
    assert table.loc[table.importance_mean.idxmax(), "group"] == PLANTED
    assert table.importance_mean.sum() == pytest.approx(1.0)
    assert table["n_trees"].iloc[0] == 60 and table["n_splits"].iloc[0] == 2
    assert table.set_index("group").loc["gradavgraw_id", "measure"] == "grad"
    # independent check: the forest's own feature_importances_ summed over each trajectory
    per_split = gini_importance(forests, OBSERVABLES, N_CKPT, per_split=True)
    for s, forest in enumerate(forests):
        mine = per_split[per_split.split == s].set_index("group").importance_mean
        for j, name in enumerate(OBSERVABLES):
            expected = forest.feature_importances_[j * N_CKPT:(j + 1) * N_CKPT].sum()
            assert mine[name] == pytest.approx(expected)
        assert mine.sum() == pytest.approx(1.0)
    # pooled mean and s.e.m. over the 60 trees, computed by hand for the planted group
    cols = np.arange(OBSERVABLES.index(PLANTED) * N_CKPT, (OBSERVABLES.index(PLANTED) + 1) * N_CKPT)
    per_tree = np.array([t.feature_importances_[cols].sum() for f in forests for t in f.estimators_])
    row = table.set_index("group").loc[PLANTED]
    assert row.importance_mean == pytest.approx(per_tree.mean())
    assert row.importance_sem == pytest.approx(per_tree.std(ddof=1) / np.sqrt(60))


def test_gini_by_measure_and_wrappers(fitted):
    X, y, splits, forests = fitted
    tr = splits[0][0]
    selection = OOBForestSelection(param_grid={"max_features": ["sqrt"], "n_estimators": [10, 20]}).fit(X[tr], y[tr])
    search = GridSearchCV(RandomForestClassifier(n_estimators=10, random_state=0), {"max_depth": [2, 3]}, cv=2)
    search.fit(X[tr], y[tr])
    assert forest_of(selection) is selection.best_estimator_
    assert forest_of(search) is search.best_estimator_
    table = gini_importance([selection, search], OBSERVABLES, N_CKPT, by="measure")
    assert table["group"].tolist() == ["weight", "act", "grad", "layer_position"]
    assert table.loc[table.importance_mean.idxmax(), "group"] == "act"
    assert table.importance_mean.sum() == pytest.approx(1.0)
    with pytest.raises(TypeError, match="no fitted forest"):
        gini_importance(object(), OBSERVABLES, N_CKPT)
    with pytest.raises(ValueError, match="cover 18"):
        gini_importance(forests, OBSERVABLES[:3], N_CKPT)


def test_permutation_planted_statistic_and_noise_groups(fitted):
    X, y, splits, forests = fitted
    groups = feature_groups(OBSERVABLES, N_CKPT)
    table = permutation_importance(forests, X, y, splits, groups, n_repeats=5, seed=0)
    assert len(table) == 2 * len(groups)
    assert set(table.columns) >= {"split", "group", "baseline", "permuted_mean", "importance"}
    summary = summarize_importance(table).set_index("statistic")
    assert summary["mean"].idxmax() == PLANTED
    assert summary.loc[PLANTED, "mean"] > 0.2
    noise = [g for g in OBSERVABLES if g != PLANTED]
    assert summary.loc[noise, "mean"].abs().max() < 0.03
    np.testing.assert_allclose(table.importance, table.baseline - table.permuted_mean)
    # baseline is the plain test accuracy of each split's forest
    for s, (_, te) in enumerate(splits):
        assert table[table.split == s].baseline.iloc[0] == pytest.approx((forests[s].predict(X[te]) == y[te]).mean())
    # seeded: same seed, same table; whole measures as groups work too
    pd.testing.assert_frame_equal(table, permutation_importance(forests, X, y, splits, groups, n_repeats=5, seed=0))
    by_measure = permutation_importance(forests, X, y, splits, feature_groups(OBSERVABLES, N_CKPT, by="measure"),
                                        n_repeats=2)
    assert summarize_importance(by_measure).set_index("statistic")["mean"].idxmax() == "act"


class EqualColumns(ClassifierMixin, BaseEstimator):
    """Predicts "same" where columns 0 and 1 are equal: deterministic, fit does nothing."""

    def fit(self, X, y):
        self.classes_ = np.array(["differ", "same"])
        return self

    def predict(self, X):
        return np.where(X[:, 0] == X[:, 1], "same", "differ")


def test_group_permutation_keeps_rows_aligned_within_the_group():
    rng = np.random.default_rng(1)
    base = rng.normal(size=50)
    X = np.column_stack([base, base, rng.normal(size=50)])
    y = np.full(50, "same")
    est = EqualColumns().fit(X, y)
    split = [(np.arange(0), np.arange(50))]
    together = permutation_importance([est], X, y, split, {"pair": [0, 1], "other": [2]}, n_repeats=3)
    assert together.baseline.tolist() == [1.0, 1.0]
    np.testing.assert_array_equal(together.importance, 0.0)  # rows moved as a whole
    apart = permutation_importance([est], X, y, split, {"first": [0], "second": [1]}, n_repeats=3)
    assert (apart.importance > 0.8).all()  # permuting one column alone breaks the pairs


def test_permutation_input_errors(fitted):
    X, y, splits, forests = fitted
    groups = feature_groups(OBSERVABLES, N_CKPT)
    with pytest.raises(ValueError, match="one per split"):
        permutation_importance(forests, X, y, splits[:1], groups)
    with pytest.raises(ValueError, match="outside"):
        permutation_importance(forests, X, y, splits, {"bad": [0, X.shape[1]]})
    with pytest.raises(ValueError, match="non-empty dict"):
        permutation_importance(forests, X, y, splits, {})
    with pytest.raises(ValueError, match="lacks column"):
        summarize_importance(pd.DataFrame({"group": ["a"]}))


def test_summarize_importance_draws_with_importance_bars_as_is():
    """Regression: the summary's columns were group/importance_mean/..., which importance_bars refused."""
    from lrid_analysis import plots

    X, y = planted_data(n=200)
    splits = two_splits(len(y))
    forests = [RandomForestClassifier(n_estimators=10, random_state=0).fit(X[tr], y[tr]) for tr, _ in splits]
    table = permutation_importance(forests, X, y, splits, feature_groups(OBSERVABLES, N_CKPT), n_repeats=2)
    summary = summarize_importance(table)
    figure = plots.importance_bars(summary)
    bars = figure.axes[0].patches
    assert len(bars) == len(summary)
    # the widest bar is the planted statistic's mean importance, computed independently from the per-split table
    expected = table[table["group"] == PLANTED]["importance"].mean()
    assert max(b.get_width() for b in bars) == pytest.approx(expected)


def test_random_state_and_the_deprecated_seed_agree():
    X, y = planted_data(n=120)
    splits = two_splits(len(y))
    forests = [RandomForestClassifier(n_estimators=5, random_state=0).fit(X[tr], y[tr]) for tr, _ in splits]
    groups = feature_groups(OBSERVABLES, N_CKPT)
    a = permutation_importance(forests, X, y, splits, groups, n_repeats=2, random_state=3)
    b = permutation_importance(forests, X, y, splits, groups, n_repeats=2, seed=3)
    pd.testing.assert_frame_equal(a, b)


def test_permutation_on_trajectories_equals_the_flat_layout(fitted):
    X, y, splits, forests = fitted
    n = len(y)
    seq = X[:, :-3].reshape(n, len(OBSERVABLES), N_CKPT).transpose(0, 2, 1)
    X3 = np.concatenate([seq, np.repeat(X[:, None, -3:], N_CKPT, axis=1)], axis=2)
    assert (Flatten().fit_transform(X3) == X).all()
    pipes = [make_pipeline(Flatten(), RandomForestClassifier(n_estimators=30, random_state=s, n_jobs=1)).fit(
        X3[tr], y[tr]) for s, (tr, _) in enumerate(splits)]
    for by in ("statistic", "measure"):
        flat = permutation_importance(forests, X, y, splits, feature_groups(OBSERVABLES, N_CKPT, by=by), n_repeats=3)
        three_d = permutation_importance(pipes, X3, y, splits, feature_groups(OBSERVABLES, by=by), n_repeats=3)
        assert (three_d["n_columns"] * np.where(three_d["group"] == "layer_position", 1, N_CKPT)
                == flat["n_columns"]).all()
        pd.testing.assert_frame_equal(three_d.drop(columns="n_columns"), flat.drop(columns="n_columns"))
