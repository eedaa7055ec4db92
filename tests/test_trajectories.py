"""Flatten and WindowGeneralizer: the trajectory axis kept in X until an estimator needs it flat."""

import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import check_estimator

from lrid_analysis import features as F
from lrid_analysis import evaluate, runner
from lrid_analysis.classifiers import Conv1DClassifier
from lrid_analysis.dataset import to_view
from lrid_analysis.synthetic import public_meta, synthetic_table
from lrid_analysis.trajectories import Flatten, WindowGeneralizer, for_trajectories, window_indices


@pytest.fixture(scope="module")
def view():
    meta = public_meta().sample(160, random_state=4)
    return F.select(to_view(synthetic_table(meta, signal=1.5, seed=5)), "grad")


def test_flatten_of_trajectories_is_the_flat_layout(view):
    X = F.trajectories(view)
    assert X.shape == (len(view), view.X.shape[1], len(view.observables) + 3) and X.dtype == view.X.dtype
    flat = Flatten().fit_transform(X)
    np.testing.assert_array_equal(flat, F.flatten(view))
    assert flat.dtype == F.flatten(view).dtype
    # without the one-hot: every channel is a trajectory
    np.testing.assert_array_equal(Flatten(n_categorical=0).fit_transform(F.trajectories(view, include_position=False)),
                                  F.flatten(view, include_position=False))
    # a flat X passes through unchanged
    np.testing.assert_array_equal(Flatten().fit(flat).transform(flat), flat)


def test_flatten_passes_the_sklearn_estimator_checks():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(Flatten(), on_fail=None)
    assert len(results) > 40 and not [r["check_name"] for r in results if r["status"] == "failed"]


def test_window_generalizer_declares_3d_only_input():
    tags = get_tags(WindowGeneralizer(LogisticRegression()))
    assert tags.input_tags.three_d_array and not tags.input_tags.two_d_array  # sklearn's 2-D checks do not apply


def test_flatten_errors_name_the_problem(view):
    X = F.trajectories(view)
    step = Flatten().fit(X)
    with pytest.raises(ValueError, match="fitted on"):
        step.transform(X[:, :5])
    moving = X.copy()
    moving[0, 3, -1] += 1.0  # a one-hot channel that changes in time is not categorical
    with pytest.raises(ValueError, match=r"categorical channel\(s\) \[%d\]" % (X.shape[2] - 1)):
        step.transform(moving)
    with pytest.raises(ValueError, match="n_categorical must be in"):
        Flatten(n_categorical=X.shape[2]).fit(X)
    with pytest.raises(NotFittedError):
        Flatten().transform(X)
    with pytest.raises(ValueError, match="fitted on"):
        step.transform(F.flatten(view)[:, :X.shape[1]])  # a flat X of a 3-D fit


def test_window_indices_cut_to_a_common_length():
    cuts = window_indices(22)  # array_split gives 8, 7, 7
    assert {w: c.tolist() for w, c in cuts.items()} == {
        "early": list(range(0, 7)), "middle": list(range(8, 15)), "late": list(range(15, 22))}
    for w in F.WINDOWS:
        assert cuts[w].tolist() == F.window_checkpoints(22, w)[:7].tolist()


def test_window_generalizer_equals_fitting_the_window_by_hand(view):
    X, y = F.trajectories(view), view.y
    forest = RandomForestClassifier(n_estimators=15, random_state=0)
    gen = WindowGeneralizer(forest, "late").fit(X, y)
    assert gen.test_windows_ == ("early", "middle", "late") and gen.n_checkpoints_ == X.shape[1]
    by_hand = clone(forest).fit(F.flatten(F.window(view, "late")), y)
    expected = np.stack([by_hand.predict(F.flatten(F.window(view, w))) for w in F.WINDOWS], axis=1)
    np.testing.assert_array_equal(gen.predict(X), expected)
    np.testing.assert_allclose(gen.score(X, y), (expected == y[:, None]).mean(axis=0))
    single = WindowGeneralizer(forest, "late", "early").fit(X, y)
    np.testing.assert_array_equal(single.predict(X), expected[:, 0])
    assert single.score(X, y) == pytest.approx(np.mean(expected[:, 0] == y))


def test_runner_with_window_generalizer_matches_the_deprecated_x_test(view):
    X, y = F.trajectories(view), view.y
    pairs = [(np.arange(0, len(y), 2), np.arange(1, len(y), 2)), (np.arange(1, len(y), 2), np.arange(0, len(y), 2))]
    forest = RandomForestClassifier(n_estimators=15, random_state=0)
    new = runner.run([runner.Condition({}, WindowGeneralizer(forest, "early", "late"), X, y, cv=pairs)],
                     progress=False).table
    with pytest.warns(FutureWarning, match="X_test"):
        old = runner.Condition({}, forest, F.flatten(F.window(view, "early")), y, cv=pairs,
                               X_test=F.flatten(F.window(view, "late")))
    old = runner.run([old], progress=False).table
    np.testing.assert_array_equal(new["test_accuracy"], old["test_accuracy"])
    assert new["confusion"].tolist() == old["confusion"].tolist()
    with pytest.warns(FutureWarning, match=r"cross_validate\(X_test=") as caught:
        cv_old = evaluate.cross_validate(forest, F.flatten(F.window(view, "early")), y, pairs,
                                         X_test=F.flatten(F.window(view, "late")), verbose=False)
    assert [w.filename for w in caught] == [__file__]  # points at the caller, once
    np.testing.assert_array_equal(cv_old.table["test_accuracy"], new["test_accuracy"])


class _GroupsSpy(ClassifierMixin, BaseEstimator):
    def fit(self, X, y, groups=None):
        self.groups_seen_ = groups
        self.shape_seen_ = X.shape
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


def test_window_generalizer_follows_sklearn_conventions(view):
    X, y = F.trajectories(view), view.y
    gen = WindowGeneralizer(LogisticRegression(C=0.5, max_iter=2000), "middle", ["early", "late"])
    assert clone(gen).get_params()["estimator__C"] == 0.5
    assert gen.set_params(estimator__C=2.0).estimator.C == 2.0
    with pytest.raises(NotFittedError):
        gen.predict(X)
    assert gen.fit(X, y) is gen and not hasattr(gen.estimator, "coef_")  # the template stays unfitted
    assert gen.predict(X).shape == (len(y), 2) and list(gen.classes_) == sorted(set(y))
    with pytest.raises(AttributeError):
        gen.best_params_  # noqa: B018  (the estimator selects nothing)
    with pytest.raises(ValueError, match="unknown window"):
        WindowGeneralizer(LogisticRegression(), "start").fit(X, y)
    with pytest.raises(ValueError, match=r"shape \(n_rows, n_checkpoints, n_channels\)"):
        WindowGeneralizer(LogisticRegression()).fit(F.flatten(view), y)
    with pytest.raises(ValueError, match="checkpoints, fitted on"):
        gen.predict(X[:, :9])
    # groups reach a fit that takes them; a 2-D estimator gets the window's flat features
    groups = np.arange(len(y)) % 5
    spy = WindowGeneralizer(_GroupsSpy(), "late").fit(X, y, groups=groups).estimator_
    n_window = len(window_indices(X.shape[1])["late"])
    assert spy.groups_seen_ is groups and spy.shape_seen_ == (len(y), len(view.observables) * n_window + 3)
    # a pipeline led by Flatten gets the same flat features
    piped = WindowGeneralizer(make_pipeline(Flatten(), LogisticRegression(max_iter=2000)), "late").fit(X, y)
    plain = WindowGeneralizer(LogisticRegression(max_iter=2000), "late").fit(X, y)
    np.testing.assert_array_equal(piped.predict(X), plain.predict(X))


def test_conv1d_reads_the_checkpoints_from_a_3d_x(view):
    X, y = F.trajectories(view), view.y
    settings = dict(max_epochs=3, validation_fraction=0.0, random_state=0)
    cube = Conv1DClassifier(n_checkpoints=999, **settings).fit(X, y)  # n_checkpoints is for flat X only
    flat = Conv1DClassifier(n_checkpoints=X.shape[1], **settings).fit(F.flatten(view), y)
    assert cube.n_checkpoints_ == flat.n_checkpoints_ == X.shape[1]
    np.testing.assert_allclose(cube.predict_proba(X), flat.predict_proba(F.flatten(view)))
    # inside a WindowGeneralizer it gets the 3-D window (its tags say it takes 3-D input)
    gen = WindowGeneralizer(Conv1DClassifier(**settings), "late", "late").fit(X, y)
    assert gen.flatten_ is None and gen.estimator_.n_checkpoints_ == len(window_indices(X.shape[1])["late"])
    with pytest.raises(ValueError, match="checkpoints, fitted on"):
        cube.predict_proba(X[:, :7])


def test_grid_selection_hands_a_3d_x_to_conv1d_and_caps_kernels_at_its_checkpoints(view):
    from lrid_analysis.classifiers import GridSelection, get_classifier

    X, y = F.trajectories(view), view.y
    late = X[:, window_indices(X.shape[1])["late"]]  # 7 checkpoints
    search = GridSelection(Conv1DClassifier(max_epochs=2, validation_fraction=0.0), {"kernel_size": [1, 6, 21]},
                           search="grid")
    gen = WindowGeneralizer(search, "late", "late").fit(X, y, groups=view.meta["run_id"].to_numpy())
    assert gen.flatten_ is None  # the search takes 3-D input because its estimator does
    assert sorted(gen.estimator_.cv_results_["param_kernel_size"]) == [1, 6, 7]
    # the same as selecting on the late window by hand
    by_hand = clone(search).fit(late, y, groups=view.meta["run_id"].to_numpy())
    assert by_hand.best_params_ == gen.best_params_
    np.testing.assert_array_equal(by_hand.predict(late), gen.predict(X))
    # a 2-D registry estimator inside a search gets the flat window
    groups = view.meta["run_id"].to_numpy()
    assert WindowGeneralizer(get_classifier("logistic", select=True)).fit(X, y, groups=groups).flatten_ is not None


def test_for_trajectories_equals_the_flat_estimator_and_passes_groups(view):
    X, y = F.trajectories(view), view.y
    forest = RandomForestClassifier(n_estimators=15, random_state=0)
    wrapped = for_trajectories(forest).fit(X, y)
    assert isinstance(wrapped[0], Flatten)
    np.testing.assert_array_equal(wrapped.predict(X[::3]), clone(forest).fit(F.flatten(view), y).predict(
        F.flatten(view)[::3]))
    conv = Conv1DClassifier()
    assert for_trajectories(conv) is conv  # takes 3-D input itself
    groups = np.arange(len(y)) % 5
    gen = WindowGeneralizer(for_trajectories(_GroupsSpy()), "early").fit(X, y, groups=groups)
    np.testing.assert_array_equal(gen.estimator_[-1].groups_seen_, groups)
    assert gen.estimator_[-1].shape_seen_ == (len(y), (X.shape[2] - 3) * len(gen.windows_["early"]) + 3)
