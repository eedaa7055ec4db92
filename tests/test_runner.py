"""The runner (lrid_analysis.runner) and its fit cache (lrid_analysis.cache), on small planted data."""

import importlib.util
import json
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lrid_analysis import runner
from lrid_analysis.cache import (
    FitCache,
    code_fingerprint,
    estimator_digest,
    library_versions,
)


def planted(n_groups=6, per_group=10, seed=0):
    """Two classes separated along feature 0; ``per_group`` rows per group, both classes in each group."""
    rng = np.random.default_rng(seed)
    n = n_groups * per_group
    y = np.tile(np.repeat(["a", "b"], per_group // 2), n_groups).astype(object)
    X = rng.normal(size=(n, 3))
    X[:, 0] += np.where(y == "b", 3.0, 0.0)
    groups = np.repeat(np.arange(n_groups), per_group)
    return X, y, groups


class RecordsGroups(ClassifierMixin, BaseEstimator):
    """Nearest class mean; remembers the groups its fit received."""

    def fit(self, X, y, groups=None):
        self.classes_ = np.unique(y)
        self.means_ = np.stack([X[y == c].mean(axis=0) for c in self.classes_])
        self.groups_seen_ = None if groups is None else np.unique(groups).tolist()
        return self

    def predict(self, X):
        d = ((X[:, None, :] - self.means_[None]) ** 2).sum(axis=2)
        return self.classes_[d.argmin(axis=1)]


def _extra_groups(estimator, X, X_test, y, train, test, split):
    return pd.DataFrame({"group": estimator.groups_seen_})


def test_leave_one_group_out_and_groups_reach_fit():
    X, y, groups = planted()
    c = runner.Condition({"model": "m"}, RecordsGroups(), X, y, cv=LeaveOneGroupOut(), groups=groups,
                         extra=_extra_groups)
    result = runner.run([c], progress=False)
    assert len(result.table) == 6
    for k, row in result.table.iterrows():
        held = int(row["split"])
        assert row["test_index"] == np.flatnonzero(groups == held).tolist()
        # the fit saw every group but the held-out one
        seen = result.extras[result.extras["split"] == held]["group"].tolist()
        assert seen == [g for g in range(6) if g != held]
    # scores equal a hand-computed leave-one-group-out loop
    for held in range(6):
        train, test = groups != held, groups == held
        expected = (RecordsGroups().fit(X[train], y[train]).predict(X[test]) == y[test]).mean()
        assert result.table.loc[held, "test_accuracy"] == pytest.approx(expected)


def test_runner_matches_cross_validate_and_n_jobs():
    X, y, _ = planted()
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    est = LogisticRegression(max_iter=200)
    one = runner.run([runner.Condition({"m": "lr"}, est, X, y, cv=cv)], progress=False).table
    two = runner.run([runner.Condition({"m": "lr"}, est, X, y, cv=cv)], progress=False, n_jobs=2).table
    pd.testing.assert_series_equal(one["test_accuracy"], two["test_accuracy"])
    for k, (train, test) in enumerate(cv.split(X, y)):
        expected = (LogisticRegression(max_iter=200).fit(X[train], y[train]).predict(X[test]) == y[test]).mean()
        assert one.loc[k, "test_accuracy"] == pytest.approx(expected)
        assert json.loads(one.loc[k, "confusion"]) == [[int(((y[test] == a) & (
            LogisticRegression(max_iter=200).fit(X[train], y[train]).predict(X[test]) == b)).sum())
            for b in ("a", "b")] for a in ("a", "b")]


def test_a_group_aware_search_gets_the_groups():
    """The runner's contract: a classifier whose fit takes ``groups`` receives the training rows' network ids."""
    X, y, groups = planted()

    class GroupedSearch(GridSearchCV):
        def fit(self, X, y, groups=None):
            self.fit_groups_ = groups
            return super().fit(X, y, groups=groups)

    search = GroupedSearch(LogisticRegression(max_iter=200), {"C": [0.1, 1.0]}, cv=LeaveOneGroupOut())
    out = runner.fit_and_score(search, X, X, y, np.flatnonzero(groups < 4), np.flatnonzero(groups >= 4), ["a", "b"],
                               groups=groups, keep_estimator=True)
    assert sorted(set(out["estimator"].fit_groups_)) == [0, 1, 2, 3]
    assert len(out["estimator"].cv_results_["split3_test_score"]) == 2  # one fold per training group


def test_errors_skip_records_failures():
    X, y, _ = planted()

    class Breaks(LogisticRegression):
        def fit(self, X, y):
            raise RuntimeError("no")

    c = runner.Condition({"m": "x"}, Breaks(), X, y, cv=StratifiedKFold(2))
    result = runner.run([c], progress=False, errors="skip")
    assert result.table.empty and len(result.failures) == 2
    assert result.failures[0]["error"] == "RuntimeError: no" and result.failures[0]["m"] == "x"
    with pytest.raises(RuntimeError):
        runner.run([c], progress=False)
    with pytest.raises(ValueError, match="n_jobs must not be 0"):
        runner.run([c], progress=False, n_jobs=0)


def test_cache_reuses_and_says_so(tmp_path, capsys):
    X, y, _ = planted()
    cv = StratifiedKFold(3)
    make = lambda C: [runner.Condition({"m": "lr"}, LogisticRegression(C=C, max_iter=200), X, y, cv=cv)]
    first = runner.run(make(1.0), cache=tmp_path, progress=False, verbose=True)
    assert (first.n_fitted, first.n_reused) == (3, 0)
    assert "reused" not in capsys.readouterr().out
    again = runner.run(make(1.0), cache=tmp_path, progress=False, verbose=True)
    assert (again.n_fitted, again.n_reused) == (0, 3)
    assert f"reused 3 cached fits from {tmp_path}" in capsys.readouterr().out
    pd.testing.assert_frame_equal(first.table, again.table)
    # another parameter: nothing reused
    other = runner.run(make(0.5), cache=tmp_path, progress=False)
    assert (other.n_fitted, other.n_reused) == (3, 0)
    # other data: nothing reused
    X[0, 0] += 1.0
    assert runner.run(make(1.0), cache=tmp_path, progress=False).n_reused == 0


def _load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_cache_sees_a_change_in_the_classifiers_code(tmp_path):
    """Regression (#9 item 10): after a fix to a classifier's code, the old fit was reused."""
    source = textwrap.dedent('''
        import numpy as np
        from sklearn.base import BaseEstimator, ClassifierMixin

        class Constant(ClassifierMixin, BaseEstimator):
            def fit(self, X, y):
                self.classes_ = np.unique(y)
                return self

            def predict(self, X):
                return np.full(len(X), self.classes_[{index}])
    ''')
    path = tmp_path / "user_model.py"
    X, y, _ = planted()
    cache = tmp_path / "cache"
    scores = []
    for index in (0, 1):
        path.write_text(source.format(index=index))
        module = _load_module(path, "_lrid_test_user_model")
        c = runner.Condition({"m": "const"}, module.Constant(), X, y, cv=StratifiedKFold(2))
        result = runner.run([c], cache=cache, progress=False)
        assert result.n_reused == 0  # the edited code is fitted again
        scores.append(result.table["test_accuracy"].tolist())
    assert scores == [[0.5, 0.5], [0.5, 0.5]] and len(list(cache.glob("*.json"))) == 4
    # and the same code again is reused
    assert runner.run([runner.Condition({"m": "const"}, module.Constant(), X, y, cv=StratifiedKFold(2))],
                      cache=cache, progress=False).n_reused == 2


def test_cache_key_parts():
    a = make_pipeline(StandardScaler(), LogisticRegression())
    assert estimator_digest(a) == estimator_digest(make_pipeline(StandardScaler(), LogisticRegression()))
    assert estimator_digest(a) != estimator_digest(make_pipeline(StandardScaler(), LogisticRegression(C=2)))
    assert set(library_versions()) == {"lrid", "numpy", "scikit-learn", "torch", "xgboost"}
    # the test module's own code is part of a fingerprint of a class defined here
    assert code_fingerprint(RecordsGroups()) != code_fingerprint(LogisticRegression())


def test_cache_ignores_a_stale_or_corrupt_entry(tmp_path):
    cache = FitCache(tmp_path)
    cache.save("abc", {"m": 1}, {"test_accuracy": 1.0}, None)
    (stem,) = [p for p in tmp_path.glob("*.json")]
    stem.write_text("{not json")
    assert cache.load("abc", {"m": 1}) is None


def test_labelled_estimators_refuse_duplicate_labels():
    """Regression (#10 bug 1): two Pipelines were both labelled 'Pipeline' and one silently replaced the other."""
    a, b = make_pipeline(LogisticRegression()), make_pipeline(StandardScaler(), KNeighborsClassifier())
    with pytest.raises(ValueError, match="two classifiers are labelled 'Pipeline'"):
        runner.labelled_estimators([a, b])
    assert list(runner.labelled_estimators({"lr": a, "knn": b})) == ["lr", "knn"]
    assert list(runner.labelled_estimators([("lr", a), ("knn", b)])) == ["lr", "knn"]
    with pytest.raises(ValueError, match="labelled 'x'"):
        runner.labelled_estimators([("x", a), ("x", b)])


def test_compare_estimators_splitters_datasets(tmp_path):
    """One call: 2 estimators x 2 splitters x 2 datasets, one long table, shared split rows, cached."""
    from sklearn.model_selection import GroupKFold
    from sklearn.tree import DecisionTreeClassifier

    from lrid_analysis.dataset import load_view
    from lrid_analysis.sources import resolve_data
    from lrid_analysis.splits import HeldOutTask

    path = resolve_data("embedded")[0]
    full = {"unit_fraction": [1.0], "noise_std": [0.0]}
    views = {"grad": load_view(path, "grad", filters=full), "act": load_view(path, "act", filters=full)}
    views = {k: v.subset(np.arange(0, len(v), 4)) for k, v in views.items()}
    models = {"tree": DecisionTreeClassifier(max_depth=4, random_state=0), "lr": LogisticRegression(max_iter=300)}
    cvs = {"networks": GroupKFold(2), "task": HeldOutTask()}
    result = runner.compare(models, views, cvs, cache=tmp_path)
    table = result.table
    n_task = views["grad"].meta["task"].nunique()
    assert len(table) == 2 * 2 * (2 + n_task)
    for (dataset, cv), part in table.groupby(["dataset", "cv"]):
        tree, lr = (part[part["classifier"] == m]["test_index"].tolist() for m in ("tree", "lr"))
        assert tree == lr  # every estimator saw the same splits
        meta = views[dataset].meta
        for test in tree:
            if cv == "networks":  # GroupKFold got the run ids: no network on both sides
                train = np.setdiff1d(np.arange(len(meta)), test)
                assert not set(meta["run_id"].iloc[test]) & set(meta["run_id"].iloc[train])
            else:
                assert meta["task"].iloc[test].nunique() == 1
    again = runner.compare(models, views, cvs, cache=tmp_path)
    assert again.n_reused == len(table) and again.n_fitted == 0
    pd.testing.assert_series_equal(table["test_accuracy"], again.table["test_accuracy"])


class ThresholdEach(ClassifierMixin, BaseEstimator):
    """Predicts "b" where a column exceeds the midpoint of its class means; one output per column."""

    def __init__(self, columns=(0, 1)):
        self.columns = columns

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        cols = list(self.columns)
        self.thresholds_ = (X[y == "a"][:, cols].mean(axis=0) + X[y == "b"][:, cols].mean(axis=0)) / 2
        if len(cols) > 1:
            self.output_names_ = [f"f{c}" for c in cols]
        return self

    def predict(self, X):
        pred = np.where(X[:, list(self.columns)] > self.thresholds_, "b", "a")
        return pred[:, 0] if len(self.columns) == 1 else pred


def test_an_estimator_with_several_outputs_is_fitted_once_and_scored_per_output():
    X, y, _ = planted()
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    multi = runner.run([runner.Condition({"model": "t"}, ThresholdEach(), X, y, cv=cv, output_key="feature")],
                       progress=False, return_predictions=True)
    table = multi.table
    assert table.columns[:3].tolist() == ["model", "split", "feature"]
    assert table[["split", "feature"]].values.tolist() == [[k, f] for k in range(3) for f in ("f0", "f1")]
    for column in ("f0", "f1"):  # each output scores as a one-output estimator on that column
        alone = runner.run([runner.Condition({"model": "t"}, ThresholdEach((int(column[1]),)), X, y, cv=cv)],
                           progress=False).table
        part = table[table["feature"] == column].reset_index(drop=True)
        for score in ("test_accuracy", "train_accuracy", "confusion"):
            assert part[score].tolist() == alone[score].tolist()
    assert table.groupby("split")["fit_seconds"].nunique().eq(1).all()  # one fit per split
    assert table[table.feature == "f0"].test_accuracy.mean() > 0.8 > table[table.feature == "f1"].test_accuracy.mean()
    preds = multi.predictions
    assert len(preds) == 2 * 3 * len(y) and set(preds["feature"]) == {"f0", "f1"}
    assert [len(p[1]) for p in multi.splits(model="t")] == [len(y) // 3] * 3
    with pytest.raises(ValueError, match="output_key"):
        runner.run([runner.Condition({"model": "t"}, ThresholdEach(), X, y, cv=cv)], progress=False)
    with pytest.raises(ValueError, match="also a key column"):
        runner.Condition({"feature": "t"}, ThresholdEach(), X, y, cv=cv, output_key="feature")


def _extra_last_step_groups(estimator, X, X_test, y, train, test, split):
    return pd.DataFrame({"group": estimator[-1].groups_seen_})


def test_groups_reach_the_last_step_of_a_pipeline():
    X, y, groups = planted()
    assert runner.groups_fit_params(make_pipeline(StandardScaler(), LogisticRegression()), groups) == {}
    c = runner.Condition({"model": "m"}, make_pipeline(StandardScaler(), RecordsGroups()), X, y,
                         cv=LeaveOneGroupOut(), groups=groups, extra=_extra_last_step_groups)
    result = runner.run([c], progress=False)
    for k, part in result.extras.groupby("split"):
        assert sorted(part["group"]) == sorted(set(range(6)) - {k})
