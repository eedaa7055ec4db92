import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    BaseCrossValidator,
    GridSearchCV,
    LeaveOneGroupOut,
    cross_val_score,
)
from sklearn.neighbors import KNeighborsClassifier

from lrid_analysis import splits as S
from lrid_analysis.synthetic import public_meta


def reference_get_splits(labels, n_splits, n_test, n_train, train_mask=None, test_mask=None, seed=0):
    """The described procedure, written out with plain Python loops."""
    labels = list(labels)
    n = len(labels)
    train_pool = [i for i in range(n) if train_mask is None or train_mask[i]]
    test_pool = [i for i in range(n) if test_mask is None or test_mask[i]]
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(n_splits):
        test = []
        for rule in sorted(set(labels[i] for i in test_pool)):
            candidates = [i for i in test_pool if labels[i] == rule]
            perm = rng.permutation(len(candidates))
            test += [candidates[p] for p in perm[:n_test]]
        test = sorted(test)
        remaining = sorted(set(train_pool) - set(test))
        train = []
        for rule in sorted(set(labels[i] for i in train_pool)):
            candidates = [i for i in remaining if labels[i] == rule]
            perm = rng.permutation(len(candidates))
            train += [candidates[p] for p in perm[:n_train]]
        out.append((sorted(train), test))
    return out


@pytest.fixture(scope="module")
def meta12():
    rules = ["sgdm", "adam", "information", "adam", "feedback", "sgdm",
             "information", "feedback", "sgdm", "adam", "information", "feedback"]
    return pd.DataFrame({"learning_rule": rules, "task": ["imagenet", "cifar10"] * 6})


@pytest.fixture(scope="module")
def pmeta():
    return public_meta()


def test_category_balanced_matches_reference_procedure(meta12):
    splitter = S.CategoryBalancedSplit(n_splits=6, train_size=2, test_size=1, random_state=0)
    got = list(splitter.split(meta12))
    expected = reference_get_splits(meta12["learning_rule"], 6, n_test=1, n_train=2, seed=0)
    assert len(got) == 6 and splitter.get_n_splits() == 6
    for (train, test), (e_train, e_test) in zip(got, expected):
        assert train.tolist() == e_train and test.tolist() == e_test
        assert train.dtype.kind == "i" and test.dtype.kind == "i"
    assert len({tuple(t) for _, t in got}) > 1  # the splits differ


def test_category_balanced_hand_computed_tiny_case():
    labels = ["b", "a", "a", "b", "a", "b", "b", "a"]
    a_rows, b_rows = [1, 2, 4, 7], [0, 3, 5, 6]
    rng = np.random.RandomState(0)
    expected = []
    for _ in range(2):
        test_a = a_rows[rng.permutation(4)[0]]          # "a" comes first in sorted order
        test_b = b_rows[rng.permutation(4)[0]]
        left_a = [r for r in a_rows if r != test_a]
        left_b = [r for r in b_rows if r != test_b]
        train_a = [left_a[p] for p in rng.permutation(3)[:2]]
        train_b = [left_b[p] for p in rng.permutation(3)[:2]]
        expected.append((sorted(train_a + train_b), sorted([test_a, test_b])))
    got = list(S.CategoryBalancedSplit(n_splits=2, train_size=2, test_size=1).split(
        pd.DataFrame({"learning_rule": labels})))
    assert [(tr.tolist(), te.tolist()) for tr, te in got] == expected


def test_category_balanced_defaults_on_public_meta(pmeta):
    splitter = S.CategoryBalancedSplit()
    got = list(splitter.split(pmeta))
    assert len(got) == 10
    assert (splitter.n_train_, splitter.n_test_) == (3888, 1296)  # 75% / 25% of 5184 per rule
    rules = pmeta["learning_rule"].to_numpy()
    for train, test in got:
        assert len(np.intersect1d(train, test)) == 0
        assert (np.diff(train) > 0).all() and (np.diff(test) > 0).all()
        for rule in np.unique(rules):
            assert (rules[train] == rule).sum() == 3888 and (rules[test] == rule).sum() == 1296
    assert not np.array_equal(got[0][1], got[1][1])


def test_fraction_sizes_round_down_and_fit_in_the_class():
    labels = ["x"] * 7 + ["y"] * 9
    splitter = S.CategoryBalancedSplit(n_splits=1)
    train, test = next(splitter.split(None, y=labels))
    assert (splitter.n_train_, splitter.n_test_) == (5, 1)  # floor(0.75*7), floor(0.25*7)
    assert splitter.counts(y=labels) == (5, 1)
    assert S.CategoryBalancedSplit(test_size=0.4).counts(y=labels) == (4, 2)  # 0.6*7 -> 4, 0.4*7 -> 2
    assert S.CategoryBalancedSplit(test_size=3).counts(y=labels) == (4, 3)  # the rest of the smallest class
    with pytest.raises(ValueError, match="asked for 6 train rows of category 'x' but only 2 remain"):
        list(S.CategoryBalancedSplit(train_size=6, test_size=5).split(None, y=labels))
    with pytest.raises(ValueError, match="too few rows"):
        S.CategoryBalancedSplit(train_size=0.05).counts(y=labels)
    with pytest.raises(ValueError, match="fraction"):
        S.CategoryBalancedSplit(train_size=1.5).counts(y=labels)


def test_filters_match_reference_and_are_respected(meta12):
    train_mask = (meta12["task"] == "imagenet").to_numpy() | (np.arange(12) < 4)
    test_mask = (meta12["task"] == "cifar10").to_numpy()
    splitter = S.CategoryBalancedSplit(n_splits=4, train_size=1, test_size=1, train_filter=train_mask,
                                       test_filter=lambda m: (m["task"] == "cifar10").to_numpy(), random_state=3)
    got = list(splitter.split(meta12))
    expected = reference_get_splits(meta12["learning_rule"], 4, 1, 1, train_mask, test_mask, seed=3)
    assert [(a.tolist(), b.tolist()) for a, b in got] == [tuple(e) for e in expected]
    for train, test in got:
        assert train_mask[train].all() and test_mask[test].all()
        assert len(np.intersect1d(train, test)) == 0
    with pytest.raises(ValueError, match="boolean mask"):
        list(S.CategoryBalancedSplit(train_filter=np.ones(5, bool)).split(meta12))


def test_meta_at_construction_and_sklearn_compatibility(meta12):
    rng = np.random.default_rng(0)
    y = meta12["learning_rule"].to_numpy()
    X = rng.normal(size=(12, 3)) + (y == "adam")[:, None] * 3.0
    splitter = S.CategoryBalancedSplit(n_splits=3, train_size=2, test_size=1, meta=meta12)
    from_array = [(a.tolist(), b.tolist()) for a, b in splitter.split(X)]
    from_meta = [(a.tolist(), b.tolist()) for a, b in S.CategoryBalancedSplit(3, 2, 1).split(meta12)]
    assert from_array == from_meta
    scores = cross_val_score(LogisticRegression(), X, y, cv=splitter)
    assert scores.shape == (3,)
    with pytest.raises(ValueError, match="X has 5 rows but the splitter's metadata has 12"):
        list(splitter.split(X[:5]))


@pytest.mark.parametrize(
    "cls, columns, n_folds",
    [(S.HeldOutArchitecture, ["architecture"], 10), (S.HeldOutTask, ["task"], 4),
     (S.HeldOutCurriculum, ["batch_size", "dataset_seed"], 6)],
)
def test_held_out_folds_on_public_meta(pmeta, cls, columns, n_folds):
    splitter = cls()
    folds = list(splitter.split(pmeta))
    assert len(folds) == n_folds == splitter.get_n_splits(pmeta) == len(splitter.fold_names(pmeta))
    keys = pmeta[columns].astype(object).where(pmeta[columns].notna(), None).apply(tuple, axis=1).to_numpy()
    seen = []
    total_test = 0
    for (train, test), value in zip(folds, splitter.values(pmeta)):
        value = value if isinstance(value, tuple) else (value,)
        assert all(k == value for k in keys[test])
        assert not any(k == value for k in keys[train])
        # the public data is rule-balanced within every value: nothing is dropped
        assert len(train) + len(test) == len(pmeta)
        seen.append(value)
        total_test += len(test)
    assert total_test == len(pmeta) and len(set(seen)) == n_folds


def test_curriculum_treats_null_seed_as_its_own_value(pmeta):
    names = S.HeldOutCurriculum().fold_names(pmeta)
    assert names == [f"batch_size={b}, dataset_seed={s}" for b in (128, 256, 512) for s in (0, None)]


def test_held_out_balances_rules_with_a_seed():
    rng = np.random.default_rng(5)
    meta = pd.DataFrame({
        "architecture": rng.choice(["a1", "a2", "a3"], size=300),
        "learning_rule": rng.choice(["adam", "sgdm", "feedback"], size=300, p=[0.5, 0.3, 0.2]),
    })
    rules = meta["learning_rule"].to_numpy()
    arch = meta["architecture"].to_numpy()
    folds = list(S.HeldOutArchitecture(random_state=1).split(meta))
    for (train, test), held in zip(folds, ["a1", "a2", "a3"]):
        assert (arch[test] == held).all() and (arch[train] != held).all()
        for idx, pool in ((train, arch != held), (test, arch == held)):
            rarest = min((rules[pool] == r).sum() for r in np.unique(rules[pool]))
            counts = [(rules[idx] == r).sum() for r in np.unique(rules[pool])]
            assert counts == [rarest] * len(counts)
    again = list(S.HeldOutArchitecture(random_state=1).split(meta))
    other = list(S.HeldOutArchitecture(random_state=2).split(meta))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(folds, again))
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(folds, other))
    unbalanced = list(S.HeldOutArchitecture(balance=False).split(meta))
    for (train, test), held in zip(unbalanced, ["a1", "a2", "a3"]):
        np.testing.assert_array_equal(test, np.flatnonzero(arch == held))
        np.testing.assert_array_equal(train, np.flatnonzero(arch != held))


def test_held_out_errors():
    with pytest.raises(ValueError, match="needs the metadata"):
        list(S.HeldOutTask().split(np.zeros((4, 2))))
    with pytest.raises(ValueError, match="only one value"):
        list(S.HeldOutTask().split(pd.DataFrame({"task": ["x"] * 4, "learning_rule": ["a", "b"] * 2})))
    with pytest.raises(ValueError, match="no column"):
        list(S.HeldOutSplit("optimizer").split(pd.DataFrame({"task": ["x", "y"]})))


def test_window_transfer_pairs():
    pairs = S.window_transfer_pairs()
    assert len(pairs) == 9 and len(set(pairs)) == 9
    assert pairs[0] == ("early", "early") and ("early", "late") in pairs and ("late", "middle") in pairs
    assert {a for a, _ in pairs} == {"early", "middle", "late"}
    assert S.window_transfer_pairs(["early", "late"]) == [("early", "early"), ("early", "late"),
                                                          ("late", "early"), ("late", "late")]
    with pytest.raises(ValueError, match="unknown window"):
        S.window_transfer_pairs(["start"])


# ---------------------------------------------------------------- scikit-learn conventions (issue 10)

def _planted(meta, seed=0):
    """Features with the learning rule planted in the first column."""
    rng = np.random.default_rng(seed)
    y = meta["learning_rule"].to_numpy()
    X = rng.normal(size=(len(meta), 3))
    X[:, 0] += pd.factorize(y, sort=True)[0] * 2.0
    return X, y


@pytest.fixture(scope="module")
def meta_small(pmeta):
    keep = pmeta["task"].isin(["imagenet", "simclr"]) & pmeta["architecture"].isin(["resnet18", "resnet34", "alexnet"])
    small = pmeta.loc[keep].groupby(["task", "architecture", "learning_rule"], sort=False).head(6)
    return small.reset_index(drop=True)  # 144 rows: 6 per (task, architecture, rule)


def _as_lists(folds):
    return [(a.tolist(), b.tolist()) for a, b in folds]


@pytest.mark.parametrize("splitter", [S.CategoryBalancedSplit(n_splits=3), S.HeldOutTask(), S.HeldOutArchitecture(),
                                      S.HeldOutCurriculum(), S.HeldOutSplit(["task", "architecture"])])
def test_groups_carry_the_metadata(meta_small, splitter):
    X, y = _planted(meta_small)
    assert isinstance(splitter, BaseCrossValidator)
    expected = _as_lists(splitter.split(meta_small))
    assert _as_lists(splitter.split(X, y, groups=meta_small)) == expected
    assert splitter.get_n_splits(X, y, groups=meta_small) == len(expected)
    assert splitter.get_metadata_routing().consumes("split", ["groups"]) == {"groups"}


def test_held_out_splitter_is_the_inner_cv_of_grid_search(meta_small):
    X, y = _planted(meta_small)
    search = GridSearchCV(KNeighborsClassifier(), {"n_neighbors": [1, 15]}, cv=S.HeldOutArchitecture())
    search.fit(X, y, groups=meta_small)
    assert search.n_splits_ == 3 and search.best_score_ > 0.5
    # each fold's score is the estimator's on our fold
    train, test = next(S.HeldOutArchitecture().split(meta_small))
    best = KNeighborsClassifier(**search.best_params_).fit(X[train], y[train])
    assert search.cv_results_["split0_test_score"][search.best_index_] == pytest.approx(best.score(X[test], y[test]))
    # nested: held-out task outside, held-out architecture inside; groups reach both
    scores = cross_val_score(search, X, y, groups=meta_small, cv=S.HeldOutTask(), params={"groups": meta_small})
    assert scores.shape == (2,)


def test_grid_search_with_metadata_routing(meta_small):
    import sklearn

    X, y = _planted(meta_small)
    with sklearn.config_context(enable_metadata_routing=True):
        search = GridSearchCV(KNeighborsClassifier(), {"n_neighbors": [1, 5]}, cv=S.HeldOutTask())
        search.fit(X, y, groups=meta_small)
    assert search.n_splits_ == 2


def test_one_dimensional_groups_work_like_leave_one_group_out(meta_small):
    X, y = _planted(meta_small)
    architecture = meta_small["architecture"].to_numpy()
    ours = S.HeldOutSplit("architecture", balance=False).split(X, y, groups=architecture)
    assert _as_lists(ours) == _as_lists(LeaveOneGroupOut().split(X, y, groups=architecture))
    balanced = S.HeldOutArchitecture().split(X, y, groups=architecture)
    assert _as_lists(balanced) == _as_lists(S.HeldOutArchitecture().split(meta_small))
    assert S.HeldOutArchitecture().fold_names(groups=architecture) == ["alexnet", "resnet18", "resnet34"]
    with pytest.raises(ValueError, match="pass a metadata DataFrame .*or y"):
        list(S.HeldOutArchitecture().split(X, groups=architecture))
    with pytest.raises(ValueError, match="X has 3 rows but groups has"):
        list(S.HeldOutArchitecture().split(X[:3], y, groups=architecture))
    with pytest.raises(ValueError, match="groups only as the metadata DataFrame"):
        list(S.CategoryBalancedSplit().split(X, y, groups=architecture))


def test_seed_is_a_deprecated_alias_of_random_state(meta12, meta_small):
    with pytest.warns(FutureWarning, match=r"CategoryBalancedSplit\(seed=...\) is deprecated") as record:
        old = S.CategoryBalancedSplit(n_splits=3, train_size=2, test_size=1, seed=4)
    assert record[0].filename == __file__  # the warning points at the caller
    new = S.CategoryBalancedSplit(n_splits=3, train_size=2, test_size=1, random_state=4)
    assert _as_lists(old.split(meta12)) == _as_lists(new.split(meta12))
    with pytest.warns(FutureWarning, match="deprecated"):
        assert new.seed == 4
    with pytest.warns(FutureWarning, match=r"HeldOutTask\(seed=...\)") as record:
        held = S.HeldOutTask(seed=2)
    assert record[0].filename == __file__
    assert held.random_state == 2
    assert _as_lists(held.split(meta_small)) == _as_lists(S.HeldOutTask(random_state=2).split(meta_small))


def test_random_state_instance_advances_between_calls(meta12):
    splitter = S.CategoryBalancedSplit(n_splits=2, train_size=2, test_size=1, random_state=np.random.RandomState(0))
    first, second = _as_lists(splitter.split(meta12)), _as_lists(splitter.split(meta12))
    assert first == _as_lists(S.CategoryBalancedSplit(2, 2, 1, random_state=0).split(meta12)) and first != second


def test_generated_repr_lists_the_constructor_parameters(meta12):
    def adam_only(meta):
        return (meta["learning_rule"] == "adam").to_numpy()

    splitter = S.CategoryBalancedSplit(3, test_filter=adam_only, random_state=1, meta=meta12)
    assert repr(splitter) == (
        "CategoryBalancedSplit(n_splits=3, train_size=None, test_size=None, label_col='learning_rule', "
        "train_filter=None, test_filter=adam_only, random_state=1, meta=<DataFrame of shape (12, 2)>)"
    )
    assert repr(S.HeldOutTask(balance=False)) == (
        "HeldOutTask(label_col='learning_rule', balance=False, random_state=0, meta=None)")


def _networks_meta(n_per_rule=20, n_layers=6, rules=("adam", "sgdm"), seed=0):
    rng = np.random.RandomState(seed)
    rows = []
    for rule in rules:
        for k in range(n_per_rule):
            for layer in range(int(rng.randint(n_layers - 2, n_layers + 1))):  # networks differ in depth
                rows.append({"run_id": f"{rule}-{k:02d}", "learning_rule": rule, "layer": layer})
    order = rng.permutation(len(rows))  # rows of a network are not contiguous
    return pd.DataFrame(rows).iloc[order].reset_index(drop=True)


def test_network_split_keeps_networks_whole_and_balances_rules():
    meta = _networks_meta(rules=("adam", "fa", "sgdm"))
    cv = S.NetworkBalancedSplit(n_splits=5, random_state=3)
    for train, test in cv.split(None, groups=meta):
        assert not set(meta.run_id.iloc[train]) & set(meta.run_id.iloc[test])
        assert set(train) | set(test) == set(range(len(meta)))  # 15 + 5 networks of each rule: all used
        for side, n in ((train, 15), (test, 5)):
            per_rule = meta.iloc[side].groupby("learning_rule").run_id.nunique()
            assert per_rule.tolist() == [n, n, n]
    assert (cv.n_train_, cv.n_test_) == (15, 5)
    assert cv.counts(groups=meta) == (15, 5)


def test_network_split_is_the_balanced_draw_over_one_row_per_network():
    meta = _networks_meta(n_per_rule=9)
    nets = meta.drop_duplicates("run_id").sort_values("run_id").reset_index(drop=True)
    reference = S.CategoryBalancedSplit(n_splits=4, random_state=7).split(None, groups=nets)
    ours = S.NetworkBalancedSplit(n_splits=4, random_state=7).split(None, groups=meta)
    for (ref_train, ref_test), (train, test) in zip(reference, ours):
        assert set(meta.run_id.iloc[test]) == set(nets.run_id.iloc[ref_test])
        assert set(meta.run_id.iloc[train]) == set(nets.run_id.iloc[ref_train])
        assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)


def test_network_split_filters_and_errors():
    meta = _networks_meta(n_per_rule=8)
    late = (meta.layer >= 2).to_numpy()
    for train, test in S.NetworkBalancedSplit(n_splits=3, test_filter=late).split(None, groups=meta):
        assert late[test].all()
        assert not set(meta.run_id.iloc[train]) & set(meta.run_id.iloc[test])
    with pytest.raises(ValueError, match="no network column 'net'"):
        next(S.NetworkBalancedSplit(network_col="net").split(None, groups=meta))
    mixed = meta.copy()
    mixed.loc[mixed.run_id == "adam-00", "learning_rule"] = ["adam", "sgdm"] * 2 + ["adam"] * (
        int((mixed.run_id == "adam-00").sum()) - 4)
    with pytest.raises(ValueError, match="several 'learning_rule' values"):
        next(S.NetworkBalancedSplit().split(None, groups=mixed))
    with pytest.raises(ValueError, match="needs the metadata"):
        next(S.NetworkBalancedSplit().split(np.zeros((4, 2)), ["a", "b", "a", "b"]))


def test_network_grouping_removes_the_network_identity_shortcut():
    """A per-network fingerprint with no rule signal: trajectory splits score it, network splits do not."""
    meta = _networks_meta(n_per_rule=20)
    rng = np.random.RandomState(1)
    fingerprint = {run: rng.normal(size=5) for run in sorted(meta.run_id.unique())}
    X = np.stack([fingerprint[r] for r in meta.run_id]) + 0.05 * rng.normal(size=(len(meta), 5))
    y = meta.learning_rule.to_numpy()
    knn = KNeighborsClassifier(n_neighbors=1)
    trajectory = cross_val_score(knn, X, y, groups=meta, cv=S.CategoryBalancedSplit(n_splits=5)).mean()
    network = cross_val_score(knn, X, y, groups=meta, cv=S.NetworkBalancedSplit(n_splits=5)).mean()
    assert trajectory > 0.95
    assert network < 0.75
