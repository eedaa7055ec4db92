"""The compatibility check of the classifier harness (lrid_benchmarks/compat.py)."""

import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import LabelEncoder

from lrid_benchmarks.compat import RULE_LABELS, check_classifier, tiny_problem
from lrid_benchmarks.plugins import load_object_from_file

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "my_classifier.py"


def _example_class():
    return load_object_from_file(EXAMPLE, "NearestCentroidClassifier")


class _Centroids(ClassifierMixin, BaseEstimator):
    """A correct minimal classifier the broken ones below derive from."""

    def __init__(self, random_state=0):
        self.random_state = random_state

    def fit(self, X, y):
        X, y = np.asarray(X, dtype=float), np.asarray(y)
        self.classes_ = np.unique(y)
        self.centroids_ = np.stack([X[y == c].mean(axis=0) for c in self.classes_])
        return self

    def _distances(self, X):
        return ((np.asarray(X, dtype=float)[:, None, :] - self.centroids_[None]) ** 2).sum(axis=2)

    def predict(self, X):
        return self.classes_[np.argmin(self._distances(X), axis=1)]

    def predict_proba(self, X):
        d = -self._distances(X)
        e = np.exp(d - d.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


class NoPredict(BaseEstimator):
    def fit(self, X, y):
        return self


class FitReturnsNone(_Centroids):
    def fit(self, X, y):
        super().fit(X, y)


class WrongShape(_Centroids):
    def predict(self, X):
        return super().predict(X)[:, None]


class IntegerLabels(_Centroids):
    def fit(self, X, y):
        self.encoder_ = LabelEncoder().fit(y)
        return super().fit(X, self.encoder_.transform(y))


class BadProba(_Centroids):
    def predict_proba(self, X):
        return super().predict_proba(X) * 2.0


class NotClonable(_Centroids):
    def __init__(self, alpha=1.0):
        self.alpha = alpha * 2  # modifies its argument: get_params no longer round-trips


class NoGetParams:
    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


class Unseeded(_Centroids):
    def predict(self, X):
        return np.random.default_rng().choice(self.classes_, size=len(X))  # ignores random_state

    def predict_proba(self, X):
        p = np.random.default_rng().random((len(X), len(self.classes_)))
        return p / p.sum(axis=1, keepdims=True)


class FitCrashesOnStrings(_Centroids):
    def fit(self, X, y):
        np.asarray(y, dtype=float)  # ValueError on string labels
        return super().fit(X, y)


class ModifiesInput(_Centroids):
    def fit(self, X, y):
        X -= X.mean(axis=0)  # in place
        return super().fit(X, y)


def test_tiny_problem_layout_and_labels():
    X, y, X_test, y_test = tiny_problem(n_checkpoints=7, n_observables=3, n_train_per_class=5, n_test_per_class=2)
    assert X.dtype == np.float32 and X.shape == (20, 3 * 7 + 3) and X_test.shape == (8, 24)
    assert sorted(set(y)) == list(RULE_LABELS) and all(isinstance(v, str) for v in y)
    onehot = X[:, -3:]
    assert np.array_equal(onehot.sum(axis=1), np.ones(20)) and set(np.unique(onehot)) == {0.0, 1.0}
    counts = {label: int((y == label).sum()) for label in RULE_LABELS}
    assert counts == dict.fromkeys(RULE_LABELS, 5)


@pytest.mark.parametrize("estimator", [
    _Centroids(), LogisticRegression(max_iter=500), RandomForestClassifier(n_estimators=10, random_state=0),
], ids=["centroids", "logistic", "forest"])
def test_good_estimators_pass(estimator):
    report = check_classifier(estimator)
    assert report.ok, report.format()
    assert report.status("deterministic") == "pass" and report.status("labels") == "pass"
    assert report.status("learns") == "pass"


def test_example_classifier_passes():
    report = check_classifier(_example_class()(), name="example")
    assert report.ok and not report.warnings, report.format()
    assert report.status("predict_proba") == "pass"


def test_example_classifier_passes_sklearn_estimator_checks():
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(_example_class()(n_categorical=0), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert not failed


@pytest.mark.parametrize("estimator, check, phrase", [
    (NoPredict(), "interface", "has no predict method"),
    (FitReturnsNone(), "fit_returns_self", "fit returned NoneType instead of the estimator itself"),
    (WrongShape(), "predict", "shape (24, 1)"),
    (IntegerLabels(), "labels", "which are not training labels"),
    (BadProba(), "predict_proba", "instead of 1"),
    (NotClonable(), "clone", "is not clonable"),
    (NoGetParams(), "clone", "has no get_params/set_params"),
    (Unseeded(), "deterministic", "predicted different labels"),
    (FitCrashesOnStrings(), "fit", "fit raised ValueError"),
    (ModifiesInput(), "fit_keeps_input", "modified the training array X in place"),
], ids=lambda v: v if isinstance(v, str) else type(v).__name__)
def test_broken_estimators_get_their_message(estimator, check, phrase):
    report = check_classifier(estimator)
    assert not report.ok
    failed = {r.check: r.message for r in report.results if r.status == "fail"}
    assert check in failed, report.format()
    assert phrase in failed[check]
    message = failed[check]
    assert "\n" not in message and message.endswith("."), message  # one readable sentence
    assert check in report.format()


def test_broken_estimator_fails_only_its_own_checks():
    report = check_classifier(BadProba())
    failed = [r.check for r in report.results if r.status == "fail"]
    assert failed == ["predict_proba"]
    report = check_classifier(IntegerLabels())
    failed = [r.check for r in report.results if r.status == "fail"]
    assert failed == ["labels", "classes"]  # integer classes_ cannot label predict_proba columns


def test_unseeded_without_random_state_names_the_missing_parameter():
    class NoSeed(Unseeded):
        def __init__(self):
            pass

    report = check_classifier(NoSeed())
    message = dict((r.check, r.message) for r in report.results)["deterministic"]
    assert "no random_state parameter" in message


def test_crashing_fit_skips_dependent_checks():
    report = check_classifier(FitCrashesOnStrings())
    assert report.status("predict") == "skip" and report.status("deterministic") == "skip"
    assert report.problems == [r.message for r in report.results if r.status == "fail"]
