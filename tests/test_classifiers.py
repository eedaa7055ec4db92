"""Tests of lrid_analysis.classifiers: registry, built-in estimators, hyperparameter selection."""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import check_estimator

from lrid_analysis import classifiers as C

RULES = np.array(["adam", "feedback", "information", "sgdm"])


def planted(n_per_class=30, n_obs=3, n_ckpt=4, signal=2.0, seed=0, informative=(0,)):
    """Flat layout with a rule-dependent trend in the informative observables' trajectories."""
    rng = np.random.default_rng(seed)
    y = np.repeat(RULES, n_per_class)
    code = np.repeat(np.arange(len(RULES)), n_per_class)
    seq = rng.normal(size=(len(y), n_obs, n_ckpt))
    t = np.linspace(0, 1, n_ckpt)
    effect = np.array([-1.5, -0.5, 0.5, 1.5])[code]
    for j in informative:
        seq[:, j, :] += signal * effect[:, None] * t[None, :]
    onehot = np.eye(3)[rng.integers(0, 3, len(y))]
    X = np.hstack([seq.reshape(len(y), -1), onehot])
    order = rng.permutation(len(y))
    return X[order], y[order]


# ---------------------------------------------------------------------------
# sklearn conventions (select=False, small settings; layout n_checkpoints=1 so any width fits)
# ---------------------------------------------------------------------------

_FOREST_WEIGHTS = (
    "bootstrapping with sample_weight is not equivalent to repeating rows; scikit-learn "
    "expects this failure for RandomForestClassifier too"
)
CHECKED = {
    "random_forest": (
        C.get_classifier("random_forest", select=False, n_estimators=10, n_checkpoints=1, n_categorical=0),
        {"check_sample_weight_equivalence_on_dense_data": _FOREST_WEIGHTS,
         "check_sample_weight_equivalence_on_sparse_data": _FOREST_WEIGHTS},
    ),
    "oob_forest": (
        C.OOBForestSelection(param_grid={"max_features": ["sqrt", None], "n_estimators": [5, 10]}),
        {"check_sample_weight_equivalence_on_dense_data": _FOREST_WEIGHTS,
         "check_sample_weight_equivalence_on_sparse_data": _FOREST_WEIGHTS},
    ),
    "grid_selection": (C.GridSelection(C.LogisticClassifier(), {"C": [0.1, 1.0]}), {}),
    # default settings (n_categorical=3): the trailing columns of the checks' data are not one-hot
    "svm": (C.get_classifier("svm", select=False), {}),
    "svm_pca": (C.get_classifier("svm", select=False, n_components=2), {}),
    "svm_paper": (C.get_classifier("svm", selection="paper", select=False, n_components=2), {}),
    "logistic": (C.get_classifier("logistic", select=False), {}),
    "xgboost": (C.get_classifier("xgboost", select=False, n_estimators=10, max_depth=3), {}),
    "conv1d": (
        C.get_classifier("conv1d", select=False, n_checkpoints=1, n_categorical=0, max_epochs=20,
                         batch_size=64, learning_rate=0.05, validation_fraction=0.0),
        {},
    ),
}


@pytest.mark.parametrize("name", list(CHECKED))
def test_sklearn_estimator_checks(name):
    estimator, expected = CHECKED[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(estimator, expected_failed_checks=expected, on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert not failed
    assert len(results) > 40


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------

def test_builtins_listed_with_paper_grids():
    listed = C.list_classifiers()
    assert {"random_forest", "svm", "conv1d", "xgboost", "logistic"} <= set(listed)
    assert all(isinstance(d, str) and d for d in listed.values())
    grid = C.get_param_grid("random_forest")
    assert grid == {"max_features": ["sqrt", "log2", None], "n_estimators": [20, 50, 100, 500, 1000]}
    assert C.get_param_grid("svm")["C"] == [1, 5e1, 5e2, 5e3, 5e4, 5e5, 5e6]
    conv = C.get_param_grid("conv1d")
    assert conv["kernel_size"] == [1, 2, 6, 11, 21] and conv["stride"] == [1, 2, 4]
    assert conv["n_filters"] == [20, 40] and conv["learning_rate"] == [1e-3, 1e-4]
    grid["n_estimators"].append(7)  # a copy: the registry is unchanged
    assert 7 not in C.get_param_grid("random_forest")["n_estimators"]


def test_unknown_name_lists_registered():
    with pytest.raises(ValueError, match="registered: .*random_forest.*svm"):
        C.get_classifier("randomforest")


def test_get_classifier_select_and_fixed_params():
    est = C.get_classifier("random_forest", random_state=3, n_jobs=2, class_weight="balanced")
    assert isinstance(est, C.OOBForestSelection)
    assert est.random_state == 3 and est.n_jobs == 2
    assert est.estimator.class_weight == "balanced"
    at_100 = C.get_classifier("random_forest", n_estimators=100)
    assert at_100.param_grid == {"max_features": ["sqrt", "log2", None], "n_estimators": [100]}
    fixed = C.get_classifier("random_forest", select=False, random_state=3)
    assert isinstance(fixed, RandomForestClassifier) and fixed.random_state == 3
    # a fixed parameter removes its grid entry
    svm = C.get_classifier("svm", n_components=None)
    assert isinstance(svm, C.GridSelection) and "n_components" not in svm.param_grid
    assert svm.estimator.n_components is None
    # a single remaining candidate needs no selection
    single = C.get_classifier("logistic", param_grid={"C": [0.5]})
    assert isinstance(single, C.LogisticClassifier) and single.C == 0.5
    with pytest.raises(ValueError, match="grid key"):
        C.get_classifier("logistic", param_grid={"alpha": [1, 2]})
    with pytest.raises(TypeError, match="could not build"):
        C.get_classifier("logistic", select=False, not_a_param=1)


def test_register_dotted_path_and_objects():
    def tiny_logistic(random_state=0, C=1.0):
        """Plain logistic regression for the test."""
        return LogisticRegression(C=C, random_state=random_state, max_iter=500)

    C.register_classifier("test_tiny_logistic", tiny_logistic, param_grid={"C": [0.01, 1.0]})
    try:
        assert C.list_classifiers()["test_tiny_logistic"] == "Plain logistic regression for the test."
        with pytest.raises(ValueError, match="already registered"):
            C.register_classifier("test_tiny_logistic", tiny_logistic)
        est = C.get_classifier("test_tiny_logistic", random_state=5)
        assert isinstance(est, C.GridSelection) and est.estimator.random_state == 5
    finally:
        C._REGISTRY.pop("test_tiny_logistic")

    from_path = C.get_classifier("sklearn.ensemble:ExtraTreesClassifier", random_state=4, n_jobs=2)
    assert type(from_path).__name__ == "ExtraTreesClassifier"
    assert from_path.random_state == 4 and from_path.n_jobs == 2
    with pytest.raises(ValueError, match="no attribute"):
        C.get_classifier("sklearn.ensemble:NoSuchForest")
    with pytest.raises(ValueError, match="cannot import"):
        C.resolve_classifier("no_such_package_xyz:Forest")

    template = LogisticRegression(C=0.3)
    resolved = C.resolve_classifier(template, C=0.7)
    assert resolved is not template and resolved.C == 0.7 and template.C == 0.3
    built = C.resolve_classifier(C.Conv1DClassifier, n_checkpoints=7, random_state=2)
    assert built.n_checkpoints == 7 and built.random_state == 2
    with pytest.raises(TypeError, match="cannot make a classifier"):
        C.resolve_classifier(42)


def test_entry_point_discovery(tmp_path, monkeypatch):
    (tmp_path / "lrid_test_plugin.py").write_text(textwrap.dedent('''
        from sklearn.neighbors import KNeighborsClassifier

        def knn(n_neighbors=5):
            """k-nearest neighbours from a plugin."""
            return KNeighborsClassifier(n_neighbors=n_neighbors)

        PAIR = (knn, {"n_neighbors": [1, 3]})
        BROKEN = 42
    '''))
    dist = tmp_path / "lrid_test_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: lrid-test-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[lrid.classifiers]\nplugin_knn = lrid_test_plugin:knn\nplugin_pair = lrid_test_plugin:PAIR\n"
        "plugin_broken = lrid_test_plugin:BROKEN\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    saved = dict(C._REGISTRY)
    monkeypatch.setattr(C.registry, "_PLUGINS_LOADED", False)
    try:
        with pytest.warns(UserWarning, match="plugin_broken"):
            listed = C.list_classifiers()
        assert listed["plugin_knn"] == "k-nearest neighbours from a plugin."
        assert "plugin_broken" not in listed
        assert C.get_param_grid("plugin_pair") == {"n_neighbors": [1, 3]}
        assert C.get_classifier("plugin_knn", n_neighbors=2).n_neighbors == 2
        X, y = planted()
        est = C.get_classifier("plugin_pair").fit(X, y)
        assert est.best_params_["n_neighbors"] in (1, 3)
    finally:
        C._REGISTRY.clear()
        C._REGISTRY.update(saved)


def test_import_without_torch():
    code = textwrap.dedent("""
        import sys

        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch blocked for this test")

        sys.meta_path.insert(0, NoTorch())
        import lrid_analysis.classifiers as c
        import lrid_analysis.importance
        assert "torch" not in sys.modules
        print(sorted(c.list_classifiers()))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "conv1d" in out.stdout


# ---------------------------------------------------------------------------
# Out-of-bag forest selection
# ---------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:Some inputs do not have OOB scores")
def test_oob_forest_truncation_equals_fresh_forest():
    X, y = planted(n_per_class=40, n_obs=6)
    grid = {"max_features": ["sqrt", None], "n_estimators": [5, 15, 40]}
    sel = C.OOBForestSelection(param_grid=grid, tol=0.5, random_state=7).fit(X, y)
    # tol=0.5 makes every candidate a tie: the fewest trees of the first setting win
    assert sel.best_params_ == {"max_features": "sqrt", "n_estimators": 5}
    forest = sel.best_estimator_
    assert len(forest.estimators_) == 5 and forest.n_estimators == 5
    fresh = RandomForestClassifier(n_estimators=5, max_features="sqrt", random_state=7, oob_score=True).fit(X, y)
    np.testing.assert_array_equal(forest.predict_proba(X), fresh.predict_proba(X))
    assert sel.best_score_ == pytest.approx(fresh.oob_score_)
    np.testing.assert_allclose(forest.oob_decision_function_, fresh.oob_decision_function_)


def replay_pruning(sel, key, values, prune_from, margin):
    """Recompute the projections and drop decisions from the recorded OOB scores."""
    table = sel.oob_scores_
    acc = np.stack([table[table[key].map(str) == str(v)].oob_score.to_numpy() for v in values])
    proj = np.stack([table[table[key].map(str) == str(v)].projected.to_numpy() for v in values])
    first = table[table[key].map(str) == str(values[0])]
    sizes, on_grid = first.n_estimators.to_numpy(), first.in_grid.to_numpy()
    best = np.max(acc[:, 0])
    events = []
    for i in sel.growth_order_:
        for j in range(1, len(sizes)):
            gain = max(acc[i, j - 1] - acc[i, j - 2], 0) / np.log2(sizes[j - 1] / sizes[j - 2]) if j > 1 else 0.0
            assert proj[i, j - 1] == pytest.approx(acc[i, j - 1] + gain * np.log2(sizes[-1] / sizes[j - 1]))
            if sizes[j - 1] >= prune_from and proj[i, j - 1] < best - margin:
                assert np.isnan(acc[i, j:]).all()
                events.append(("dropped", values[i], sizes[j - 1]))
                break
            if sizes[j - 1] >= prune_from and acc[i, j - 1] < best - margin:
                events.append(("kept_climbing", values[i], sizes[j - 1]))
            assert not np.isnan(acc[i, j])
            if on_grid[j]:  # the bar is set by selectable sizes only
                best = max(best, acc[i, j])
    return events


@pytest.mark.filterwarnings("ignore:Some inputs do not have OOB scores")
def test_oob_forest_selection_reads_oob_and_prunes():
    # stumps (max_depth=1) are cheap and level off below full trees
    X, y = planted(n_per_class=40, n_obs=5, n_ckpt=3, signal=3.0, informative=(0, 1))
    grid = {"max_depth": [1, None], "n_estimators": [10, 20, 40, 80]}
    sel = C.OOBForestSelection(RandomForestClassifier(max_features=None), param_grid=grid, prune_from=20,
                               margin=0.02, random_state=0).fit(X, y)
    table = sel.oob_scores_
    assert list(table.columns) == ["max_depth", "n_estimators", "in_grid", "oob_score", "projected", "dropped"]
    assert table.in_grid.all()  # sizes double already: no extra decision sizes
    assert sel.growth_order_ == [0, 1]  # stumps first: less split-search work
    events = replay_pruning(sel, "max_depth", grid["max_depth"], 20, 0.02)
    assert ("dropped", 1, 40) in events
    assert table[table.max_depth == 1].dropped.tolist() == [False, False, False, True]
    assert sel.best_params_["max_depth"] is None
    # recorded scores are the OOB accuracy of a fresh forest of that size
    full = table[table.max_depth.isna()].set_index("n_estimators")
    for k in (10, 40, 80):
        fresh = RandomForestClassifier(n_estimators=k, max_features=None, random_state=0, oob_score=True).fit(X, y)
        assert full.loc[k, "oob_score"] == pytest.approx(fresh.oob_score_)
    best = table.oob_score.max()
    assert sel.best_score_ == best
    assert sel.best_params_["n_estimators"] == table[table.oob_score == best].n_estimators.min()
    assert set(sel.classes_) == set(RULES)
    assert sel.predict(X).dtype == y.dtype


@pytest.mark.filterwarnings("ignore:Some inputs do not have OOB scores")
def test_oob_forest_keeps_a_setting_that_is_still_climbing():
    # many weakly informative columns: max_features=None trails at 10 trees but climbs fast
    X, y = planted(n_per_class=40, n_obs=20, n_ckpt=2, signal=1.0, informative=tuple(range(20)))
    grid = {"max_features": [1, None], "n_estimators": [5, 10, 20, 40]}
    sel = C.OOBForestSelection(param_grid=grid, prune_from=10, margin=0.0, random_state=0).fit(X, y)
    assert sel.growth_order_ == [0, 1]
    events = replay_pruning(sel, "max_features", grid["max_features"], 10, 0.0)
    assert ("kept_climbing", None, 10) in events
    assert sel.best_params_ == {"max_features": None, "n_estimators": 40}
    # the growth order follows cost, not grid order: same result from the reversed grid
    reverse = {"max_features": [None, 1], "n_estimators": [5, 10, 20, 40]}
    again = C.OOBForestSelection(param_grid=reverse, prune_from=10, margin=0.0, random_state=0).fit(X, y)
    assert again.growth_order_ == [1, 0] and again.best_params_ == sel.best_params_
    np.testing.assert_array_equal(again.predict_proba(X), sel.predict_proba(X))


def test_decision_sizes_add_doublings_between_distant_grid_sizes():
    assert C._decision_sizes([20, 50, 100, 500, 1000], 100) == [20, 50, 100, 200, 500, 1000]
    assert C._decision_sizes([10, 80], 10) == [10, 20, 40, 80]
    assert C._decision_sizes([10, 80], 20) == [10, 80]  # below prune_from no decision is taken
    assert C._decision_sizes([5, 10, 20], 1) == [5, 10, 20]


@pytest.mark.filterwarnings("ignore:Some inputs do not have OOB scores")
def test_oob_forest_decides_at_extra_sizes_but_selects_grid_sizes():
    X, y = planted(n_per_class=40, n_obs=5, n_ckpt=3, signal=3.0, informative=(0, 1))
    grid = {"max_depth": [1, None], "n_estimators": [10, 80]}
    sel = C.OOBForestSelection(RandomForestClassifier(max_features=None), param_grid=grid, prune_from=10,
                               margin=0.02, random_state=0).fit(X, y)
    table = sel.oob_scores_
    stumps = table[table.max_depth == 1]
    assert stumps.n_estimators.tolist() == [10, 20, 40, 80]
    assert stumps.in_grid.tolist() == [True, False, False, True]
    replay_pruning(sel, "max_depth", grid["max_depth"], 10, 0.02)
    assert stumps.dropped.any()  # the stumps level off and stop before 80 trees
    assert sel.best_params_["n_estimators"] in grid["n_estimators"]
    k = sel.best_params_["n_estimators"]
    fresh = RandomForestClassifier(n_estimators=k, max_features=None, max_depth=sel.best_params_["max_depth"],
                                   random_state=0, oob_score=True).fit(X, y)
    np.testing.assert_array_equal(sel.predict_proba(X), fresh.predict_proba(X))
    assert sel.best_score_ == pytest.approx(fresh.oob_score_)


def test_oob_forest_bad_grid():
    X, y = planted()
    with pytest.raises(ValueError, match="n_estimators"):
        C.OOBForestSelection(param_grid={"max_features": ["sqrt"]}).fit(X, y)
    with pytest.raises(ValueError, match="not parameters"):
        C.OOBForestSelection(param_grid={"depth": [3], "n_estimators": [5]}).fit(X, y)


# ---------------------------------------------------------------------------
# Grid selection and the other classifiers
# ---------------------------------------------------------------------------

def test_grid_selection_picks_the_working_setting_from_training_rows():
    X, y = planted(n_per_class=40)
    # C=1e-6 shrinks every coefficient to ~0: chance accuracy; C=1 separates the rules
    for search in ("halving", "grid"):
        sel = C.GridSelection(C.LogisticClassifier(), {"C": [1e-6, 1.0]}, search=search, random_state=0)
        sel.fit(X, y)
        assert sel.best_params_ == {"C": 1.0}
        assert sel.search_method_ == search
        assert sel.predict_proba(X).shape == (len(y), 4)
        assert (sel.predict(X) == y).mean() > 0.8
    cloned = clone(sel)
    assert not hasattr(cloned, "best_params_")


def test_svm_pca_and_grid_capping():
    X, y = planted(n_per_class=15, n_obs=3, n_ckpt=4)  # 12 continuous columns, 60 rows
    svm = C.LinearSVMClassifier(C=1.0, n_components=50).fit(X, y)
    assert svm.n_components_ == 12
    pca = svm.pipeline_.named_steps["features"].named_transformers_["continuous"].named_steps["pca"]
    assert pca.n_components_ == 12
    grid = svm._adapt_param_grid({"C": [1.0], "n_components": [None, 10, 20, 50]}, X.shape)
    assert grid["n_components"] == [None, 10, 12]
    assert svm.decision_function(X).shape == (len(y), 4)
    assert (svm.predict(X) == y).mean() > 0.8
    with pytest.raises(ValueError, match="n_categorical must be >= 0"):
        C.LinearSVMClassifier(n_categorical=-1).fit(X, y)


def test_trailing_columns_are_one_hot_only_when_they_are_0_1_and_leave_continuous_ones():
    X, y = planted()
    assert C.LinearSVMClassifier().fit(X, y).n_categorical_ == 3
    continuous = X.copy()
    continuous[:, -3:] += 0.5  # not 0/1: scaled with the rest
    assert C.LogisticClassifier().fit(continuous, y).n_categorical_ == 0
    assert C.LinearSVMClassifier(n_categorical=X.shape[1]).fit(X, y).n_categorical_ == 0  # nothing left


def test_one_hot_passes_through_unscaled():
    X, y = planted()
    svm = C.LinearSVMClassifier().fit(X, y)
    transformed = svm.pipeline_.named_steps["features"].transform(X)
    np.testing.assert_array_equal(transformed[:, -3:], X[:, -3:])
    np.testing.assert_allclose(transformed[:, :-3].mean(axis=0), 0, atol=1e-12)


def test_xgboost_string_labels():
    X, y = planted(n_per_class=20)
    est = C.XGBoostClassifier(n_estimators=20, max_depth=2).fit(X, y)
    assert list(est.classes_) == sorted(RULES)
    proba = est.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(est.predict(X), est.classes_[proba.argmax(1)])
    assert (est.predict(X) == y).mean() > 0.9


def test_conv1d_learns_planted_trajectory_and_is_seeded():
    X, y = planted(n_per_class=40, n_obs=3, n_ckpt=6, signal=3.0)
    params = dict(n_checkpoints=6, n_categorical=3, kernel_size=11, stride=2, pooling="avg",
                  learning_rate=1e-2, max_epochs=60, patience=10, random_state=1)
    est = C.Conv1DClassifier(**params).fit(X[:120], y[:120])
    assert (est.predict(X[120:]) == y[120:]).mean() > 0.6  # chance is 0.25
    assert est.network_["features"][0].kernel_size == (6,)  # capped at n_checkpoints
    assert 1 <= est.best_epoch_ <= est.n_epochs_ <= 60
    assert list(est.history_.columns) == ["epoch", "train_loss", "val_loss", "val_accuracy"]
    again = C.Conv1DClassifier(**params).fit(X[:120], y[:120])
    np.testing.assert_array_equal(est.predict_proba(X), again.predict_proba(X))
    proba = est.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    # kernel sizes above n_checkpoints collapse in the grid
    assert est._adapt_param_grid({"kernel_size": [1, 2, 6, 11, 21]}, X.shape)["kernel_size"] == [1, 2, 6]


def test_conv1d_layout_error_is_clear():
    X, y = planted(n_obs=3, n_ckpt=4)
    with pytest.raises(ValueError, match="n_checkpoints=5 and n_categorical=3"):
        C.Conv1DClassifier(n_checkpoints=5, max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="pooling"):
        C.Conv1DClassifier(n_checkpoints=4, pooling="median").fit(X, y)


# ---------------------------------------------------------------------------
# Selection grouped by network
# ---------------------------------------------------------------------------

def networked(n_networks=64, n_layers=6, n_nuisance=20, seed=0):
    """Rows = layers of networks: a weak rule signal shared by all networks, plus a
    per-network fingerprint (20 columns, constant within a network) that identifies the
    network, hence its rule, but says nothing about any other network."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_networks), n_layers)
    code = (np.arange(n_networks) % 4)[groups]
    fingerprint = rng.normal(scale=3.0, size=(n_networks, n_nuisance))[groups]
    fingerprint += rng.normal(scale=0.1, size=fingerprint.shape)
    signal = 2.0 * np.array([-1.5, -0.5, 0.5, 1.5])[code][:, None] + rng.normal(size=(len(groups), 2))
    return np.hstack([signal, fingerprint]), RULES[code], groups


def test_grouped_oob_selection_does_not_prefer_memorizing_networks():
    X, y, groups = networked()
    X_new, y_new, _ = networked(seed=10)  # other networks
    grid = {"max_features": [1, None], "n_estimators": [20, 50]}
    with pytest.warns(C.UngroupedSelectionWarning, match="no groups"):
        leaky = C.OOBForestSelection(param_grid=grid, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", C.UngroupedSelectionWarning)
        grouped = C.OOBForestSelection(param_grid=grid, random_state=0).fit(X, y, groups=groups)
    # a random column per split mostly splits on fingerprints: memorizes networks, and the
    # row bootstrap's out-of-bag rows have their network in the bag, so it looks perfect
    assert leaky.best_params_["max_features"] == 1 and leaky.best_score_ > 0.95
    assert grouped.best_params_["max_features"] is None and grouped.best_score_ < 0.9
    assert not leaky.grouped_ and grouped.grouped_ and leaky.bootstrap_counts_ is None
    assert (grouped.predict(X_new) == y_new).mean() > (leaky.predict(X_new) == y_new).mean() + 0.1


def test_grouped_oob_rows_are_whole_unseen_networks_and_the_score_is_their_vote():
    X, y, groups = networked(n_networks=24, n_layers=4, seed=3)
    est = C.OOBForestSelection(param_grid={"max_features": ["sqrt"], "n_estimators": [15]}, random_state=1)
    est.fit(X, y, groups=groups)
    forest, counts = est.best_estimator_, est.bootstrap_counts_
    assert counts.shape == (15, 24) and (counts.sum(axis=1) == 24).all()  # 24 networks drawn per tree
    codes = np.searchsorted(est.groups_, groups.astype(str))
    proba, n_votes = np.zeros((len(y), 4)), np.zeros(len(y))
    for t, tree in enumerate(forest.estimators_):
        weight = counts[t][codes]
        oob = weight == 0
        assert not set(groups[oob]) & set(groups[~oob])  # no out-of-bag row shares a network with the bag
        # the tree was grown on exactly these weights (same seed and weights -> the same tree)
        again = clone(tree).fit(X.astype(np.float32), np.unique(y, return_inverse=True)[1], sample_weight=weight)
        np.testing.assert_array_equal(again.tree_.threshold, tree.tree_.threshold)
        proba[oob] += tree.predict_proba(X[oob].astype(np.float32))
        n_votes[oob] += 1
    expected = np.mean(np.argmax(proba / np.maximum(n_votes, 1)[:, None], axis=1) == np.unique(y, return_inverse=True)[1])
    assert est.best_score_ == pytest.approx(expected)
    assert set(est.predict(X)) <= set(RULES) and est.predict_proba(X).shape == (len(y), 4)
    with pytest.raises(ValueError, match="groups has 3 entries"):
        est.fit(X, y, groups=[1, 2, 3])


@pytest.mark.filterwarnings("ignore::lrid_analysis.classifiers.UngroupedSelectionWarning")
@pytest.mark.parametrize("search", ["grid", "halving"])
def test_grouped_grid_selection_folds_hold_out_whole_networks(search):
    X, y, groups = networked()
    X_new, y_new, _ = networked(seed=10)
    template = RandomForestClassifier(n_estimators=30, random_state=0)
    grid = {"max_features": [1, None]}
    leaky = C.GridSelection(template, grid, search=search).fit(X, y)
    grouped = C.GridSelection(template, grid, search=search).fit(X, y, groups=groups)
    assert leaky.best_params_ == {"max_features": 1} and leaky.best_score_ > 0.95
    assert grouped.best_params_ == {"max_features": None} and grouped.best_score_ < 0.9
    assert (grouped.predict(X_new) == y_new).mean() > (leaky.predict(X_new) == y_new).mean() + 0.1
    assert grouped.grouped_ and not leaky.grouped_
    for train, val in grouped.cv_.split(X, y, groups):
        assert not set(groups[train]) & set(groups[val])
    shared = [np.isin(groups[val], groups[train]).mean() for train, val in leaky.cv_.split(X, y)]
    assert min(shared) > 0.9  # the leak the grouped folds remove
    with pytest.raises(ValueError, match="2 groups cannot fill cv=3"):
        C.GridSelection(template, grid).fit(X, y, groups=groups % 2)


# ---------------------------------------------------------------------------
# --selection paper: the original protocol, point by point
# ---------------------------------------------------------------------------

def test_paper_grids_and_search():
    from sklearn.model_selection import ParameterGrid

    assert C.PAPER_SVM_GRID["n_components"] == [None, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 600]
    assert C.PAPER_SVM_GRID["C"] == [1, 5e1, 5e2, 5e3, 5e4, 5e5, 5e6]
    assert len(ParameterGrid(C.PAPER_CONV1D_GRID)) == 720
    assert C.PAPER_CONV1D_GRID["batch_size"] == [512, 1024]
    assert C.PAPER_CONV1D_GRID["pooling"] == ["none", "global_max", "global_avg"]
    assert len(ParameterGrid(C.PAPER_SETTINGS["random_forest"]["grid"])) == 15
    svm = C.get_classifier("svm", selection="paper", random_state=3)
    assert isinstance(svm, C.GridSelection) and (svm.search, svm.cv, svm.shuffle) == ("grid", 5, False)
    assert svm.estimator.scale is False and svm.estimator.dual is True
    conv = C.get_classifier("conv1d", selection="paper")
    assert len(ParameterGrid(conv.param_grid)) == 720
    net = conv.estimator
    assert (net.categorical_as_channels, net.standardize, net.init, net.drop_last, net.dtype) == (
        True, False, "glorot", True, "float64")
    assert (net.max_epochs, net.validation_fraction) == (400, 0.0)
    forest = C.get_classifier("random_forest", selection="paper")
    assert isinstance(forest, C.OOBForestSelection) and forest.param_grid == C.RANDOM_FOREST_GRID
    # compact and off
    assert C.get_classifier("svm", selection="compact").C == 50.0
    assert isinstance(C.get_classifier("logistic", selection="compact"), C.GridSelection)
    assert isinstance(C.get_classifier("svm", selection="off"), C.LinearSVMClassifier)
    assert C.get_classifier("svm", selection="paper", C=5.0).estimator.C == 5.0  # fixed params leave the grid
    assert "C" not in C.get_classifier("svm", selection="paper", C=5.0).param_grid
    with pytest.raises(ValueError, match="unknown selection"):
        C.get_classifier("svm", selection="fast")


def test_paper_svm_is_unscaled_pca_then_dual_linear_svc_in_float64():
    from sklearn.decomposition import PCA
    from sklearn.svm import LinearSVC

    X, y = planted(n_per_class=30, n_obs=3, n_ckpt=4)
    X32 = X.astype(np.float32)
    est = C.LinearSVMClassifier(n_components=5, scale=False, dual=True, C=0.5).fit(X32, y)
    # by hand: PCA of the 12 raw continuous columns, one-hot appended, LinearSVC(dual=True), float64
    pca = PCA(n_components=5, random_state=0).fit(X[:, :12])
    Z = np.hstack([pca.transform(X[:, :12]), X[:, 12:]])
    svc = LinearSVC(C=0.5, dual=True, random_state=0).fit(Z, y)
    np.testing.assert_allclose(est.decision_function(X32), svc.decision_function(Z), atol=1e-6)
    assert est.pipeline_[-1].coef_.dtype == np.float64
    assert est.pipeline_[-1].dual is True
    scaled = C.LinearSVMClassifier(n_components=5, dual=True, C=0.5).fit(X, y)
    assert not np.allclose(scaled.decision_function(X), svc.decision_function(Z), atol=1e-3)


def test_conv1d_paper_network_by_hand():
    import torch

    X, y = planted(n_per_class=10, n_obs=2, n_ckpt=5)
    params = dict(n_checkpoints=5, n_categorical=3, n_filters=4, kernel_size=2, stride=1, pooling="global_max",
                  categorical_as_channels=True, standardize=False, init="glorot", drop_last=True,
                  dtype="float64", batch_size=16, max_epochs=3, validation_fraction=0.0, random_state=0)
    est = C.Conv1DClassifier(**params).fit(X, y)
    conv, head = est.network_["features"][0], est.network_["head"]
    assert conv.in_channels == 2 + 3 and head.in_features == 4  # one-hot as channels; global pooling: 1 step
    assert conv.weight.dtype == torch.float64
    seq, cat = est._split(X)
    np.testing.assert_array_equal(seq[:, :2], X[:, :10].reshape(-1, 2, 5))  # not z-scored
    np.testing.assert_array_equal(seq[:, 2:], np.repeat(X[:, 10:, None], 5, axis=2))  # constant channels
    assert cat.shape == (len(X), 0)
    # forward pass by hand in float64: conv, ReLU, max over time, linear
    w, b = conv.weight.detach().numpy(), conv.bias.detach().numpy()
    windows = np.stack([seq[:, :, t:t + 2] for t in range(4)], axis=1)  # (n, 4 steps, 5 ch, 2)
    hidden = np.maximum(np.einsum("ntck,fck->ntf", windows, w) + b, 0).max(axis=1)
    logits = hidden @ head.weight.detach().numpy().T + head.bias.detach().numpy()
    expected = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(est.predict_proba(X), expected / expected.sum(1, keepdims=True), rtol=1e-12)
    # 40 rows, batch 16, last partial batch dropped: 2 steps per epoch, 3 epochs, no early stopping
    assert est.n_epochs_ == 3 and est.history_.val_loss.isna().all()
    assert [len(b) for b in C.conv1d._batches(np.arange(40), 16, True)] == [16, 16]
    assert [len(b) for b in C.conv1d._batches(np.arange(40), 16, False)] == [16, 16, 8]
    assert [len(b) for b in C.conv1d._batches(np.arange(10), 16, True)] == [10]  # one batch of all rows


def test_conv1d_glorot_init_and_global_avg():
    X, y = planted(n_per_class=5, n_obs=2, n_ckpt=5)
    est = C.Conv1DClassifier(n_checkpoints=5, n_filters=6, kernel_size=3, pooling="global_avg", init="glorot",
                             max_epochs=1, validation_fraction=0.0)
    net = est._build_network(2, 4)
    conv, head = net["features"][0].requires_grad_(False), net["head"].requires_grad_(False)
    bound = np.sqrt(6 / (2 * 3 + 6 * 3))  # Glorot uniform: fan_in = 2 ch x 3, fan_out = 6 filters x 3
    assert float(conv.weight.abs().max()) <= bound and float(conv.bias.abs().max()) == 0
    assert float(head.bias.abs().max()) == 0 and head.in_features == 6 + 3  # one-hot joins the linear layer
    assert float(conv.weight.abs().max()) > 0.5 * bound
    assert isinstance(net["features"][2], __import__("torch").nn.AdaptiveAvgPool1d)


def test_stratified_network_bootstrap_keeps_networks_per_class():
    X, y, groups = networked(n_networks=24, n_layers=4, seed=3)
    grid = {"max_features": ["sqrt"], "n_estimators": [15]}
    est = C.OOBForestSelection(param_grid=grid, stratify_groups=True, random_state=1).fit(X, y, groups=groups)
    codes = np.searchsorted(est.groups_, np.unique(groups).astype(str))
    rule_of_network = (np.arange(24) % 4)[np.argsort(codes)]  # class of each column of bootstrap_counts_
    per_class = np.stack([est.bootstrap_counts_[:, rule_of_network == c].sum(axis=1) for c in range(4)], axis=1)
    assert (per_class == 6).all()  # 6 networks of each rule drawn for every tree
    assert C.OOBForestSelection().stratify_groups  # the default
    plain = C.OOBForestSelection(param_grid=grid, stratify_groups=False, random_state=1).fit(X, y, groups=groups)
    plain_per_class = np.stack([plain.bootstrap_counts_[:, rule_of_network == c].sum(axis=1) for c in range(4)], 1)
    assert not (plain_per_class == 6).all() and (plain_per_class.sum(axis=1) == 24).all()
