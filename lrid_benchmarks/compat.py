"""Compatibility check: does an estimator fit the benchmark's contract?

Before a classifier is benchmarked, :func:`check_classifier` runs it on a
tiny synthetic problem shaped like the real one (:func:`tiny_problem`): four
learning-rule labels given as strings (``adam``, ``feedback``,
``information``, ``sgdm``), the flat feature layout of
:func:`lrid_analysis.features.flatten` (observable trajectories, then the
three layer-position one-hot columns), float32 features, a strong planted
signal. Each check that fails explains, in one sentence, what the estimator
lacks:

``interface``      it has ``fit`` and ``predict`` methods;
``clone``          :func:`sklearn.base.clone` works (``get_params`` /
                   ``set_params`` return the constructor arguments unchanged);
``fit``            ``fit(X, y)`` runs on string labels;
``fit_returns_self`` ``fit`` returns the estimator itself;
``fit_keeps_input`` ``fit`` leaves ``X`` and ``y`` unchanged;
``predict``        ``predict(X)`` runs and returns one label per row (1-D);
``labels``         the predicted labels are training labels (strings in,
                   the same strings out);
``classes``        ``classes_`` holds the sorted training labels (an error
                   only when ``predict_proba`` exists, whose columns follow it);
``predict_proba``  when present: shape ``(n_rows, n_classes)``, finite,
                   non-negative, rows summing to 1;
``deterministic``  two fits of clones with the same ``random_state`` predict
                   the same labels (and probabilities);
``learns``         (a warning, not an error) accuracy on the easy problem
                   clearly above chance.

Scikit-learn's own estimator checks (``check_estimator``) are stricter and
cover the built-in classifiers (see ``tests/test_classifiers.py``); this
check covers what the benchmark relies on and names the fix.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import clone

__all__ = ["RULE_LABELS", "CheckResult", "CompatibilityReport", "tiny_problem", "check_classifier"]

#: Labels of the tiny problem: the public learning-rule spellings.
RULE_LABELS = ("adam", "feedback", "information", "sgdm")


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check.

    Attributes
    ----------
    check : str
        Short name (see the module docstring).
    status : {"pass", "fail", "warn", "skip"}
    message : str
        One sentence; empty when the check passed.
    """

    check: str
    status: str
    message: str = ""


@dataclass
class CompatibilityReport:
    """All check results of one estimator.

    Attributes
    ----------
    classifier : str
    results : list of CheckResult
    """

    classifier: str
    results: list = field(default_factory=list)

    @property
    def ok(self):
        """True when no check failed (warnings allowed)."""
        return not any(r.status == "fail" for r in self.results)

    @property
    def problems(self):
        """Messages of the failed checks, in order."""
        return [r.message for r in self.results if r.status == "fail"]

    @property
    def warnings(self):
        """Messages of the warnings, in order."""
        return [r.message for r in self.results if r.status == "warn"]

    def status(self, check):
        """Status of the check named ``check`` (``None`` if it did not run)."""
        for r in self.results:
            if r.check == check:
                return r.status
        return None

    def format(self):
        """A readable multi-line summary."""
        passed = sum(r.status == "pass" for r in self.results)
        head = "compatible" if self.ok else "NOT compatible"
        lines = [f"{self.classifier}: {head} ({passed} of {len(self.results)} checks passed)"]
        for r in self.results:
            if r.status == "fail":
                lines.append(f"  x {r.check}: {r.message}")
            elif r.status == "warn":
                lines.append(f"  ! {r.check}: {r.message}")
            elif r.status == "skip":
                lines.append(f"  - {r.check}: {r.message}")
        return "\n".join(lines)

    def __str__(self):
        return self.format()


def tiny_problem(n_checkpoints=21, n_observables=2, n_categorical=3, n_train_per_class=12, n_test_per_class=6,
                 seed=0):
    """A small, easy classification problem in the flat feature layout.

    Every observable trajectory is ``effect[rule, j] * t + noise`` with
    ``t`` in [0, 1] over the checkpoints, unit Gaussian noise and effects
    three noise standard deviations apart, so any reasonable classifier
    separates the rules. Rows are shuffled.

    Parameters
    ----------
    n_checkpoints, n_observables, n_categorical : int
        Layout: ``n_observables * n_checkpoints`` continuous columns
        (statistic-major) followed by ``n_categorical`` one-hot columns.
    n_train_per_class, n_test_per_class : int
    seed : int

    Returns
    -------
    X_train : ndarray of float32, shape (4 * n_train_per_class, n_features)
    y_train : ndarray of str, shape (4 * n_train_per_class,)
    X_test : ndarray of float32, shape (4 * n_test_per_class, n_features)
    y_test : ndarray of str, shape (4 * n_test_per_class,)
    """
    rng = np.random.default_rng(seed)
    effect = 3.0 * rng.standard_normal((len(RULE_LABELS), n_observables))
    t = np.linspace(0.0, 1.0, n_checkpoints)

    def draw(per_class):
        codes = rng.permutation(np.repeat(np.arange(len(RULE_LABELS)), per_class))
        traj = effect[codes][:, :, None] * t[None, None, :] + rng.standard_normal(
            (len(codes), n_observables, n_checkpoints))
        flat = traj.reshape(len(codes), -1)
        if n_categorical:
            onehot = np.eye(n_categorical)[rng.integers(0, n_categorical, len(codes))]
            flat = np.concatenate([flat, onehot], axis=1)
        return flat.astype(np.float32), np.array(RULE_LABELS, dtype=object)[codes].astype(str)

    X_train, y_train = draw(n_train_per_class)
    X_test, y_test = draw(n_test_per_class)
    return X_train, y_train, X_test, y_test


def _short(values, limit=4):
    values = list(values)
    shown = ", ".join(repr(v.item() if isinstance(v, np.generic) else v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


def _error(err):
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if len(text) > 160:
        text = text[:157] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class _Checker:
    def __init__(self, estimator, name, random_state, problem):
        self.estimator = estimator
        self.name = name
        self.random_state = random_state
        self.X, self.y, self.X_test, self.y_test = problem
        self.results = []
        self.clonable = False

    def add(self, check, status, message=""):
        self.results.append(CheckResult(check, status, message))

    def fresh(self):
        """An unfitted copy: a clone when possible, else a deep copy."""
        return clone(self.estimator) if self.clonable else copy.deepcopy(self.estimator)

    def problem_text(self):
        return (f"{len(self.y)} rows x {self.X.shape[1]} float32 features with string labels "
                f"{_short(sorted(set(self.y)))}")

    def run(self):
        est = self.estimator
        missing = [m for m in ("fit", "predict") if not callable(getattr(est, m, None))]
        if missing:
            self.add("interface", "fail",
                     f"{self.name} has no {' or '.join(missing)} method; a classifier needs fit(X, y) and predict(X).")
            return self.results
        self.add("interface", "pass")
        self.check_clone()
        fitted = self.check_fit()
        if fitted is None:
            for check in ("predict", "labels", "classes", "predict_proba", "deterministic", "learns"):
                self.add(check, "skip", "not run because fit failed")
            return self.results
        predictions = self.check_predict(fitted)
        self.check_classes(fitted)
        proba = self.check_proba(fitted)
        self.check_deterministic(predictions, proba)
        self.check_learns(predictions)
        return self.results

    def check_clone(self):
        est = self.estimator
        if not (callable(getattr(est, "get_params", None)) and callable(getattr(est, "set_params", None))):
            self.add("clone", "fail",
                     f"{self.name} has no get_params/set_params, so it cannot be cloned for each split; inherit "
                     "from sklearn.base.BaseEstimator and store every __init__ argument unchanged under its own name.")
            return
        try:
            copy_ = clone(est)
            params = est.get_params(deep=False)
            copy_.set_params(**params)
            again = copy_.get_params(deep=False)
            if set(again) != set(params):
                raise RuntimeError(f"get_params of the clone returns {sorted(again)} instead of {sorted(params)}")
        except Exception as err:
            self.add("clone", "fail",
                     f"{self.name} is not clonable ({_error(err)}); its __init__ must store every argument "
                     "unchanged as an attribute of the same name, so that get_params/set_params round-trip.")
            return
        self.clonable = True
        self.add("clone", "pass")

    def check_fit(self):
        est = self.fresh()
        X, y = self.X.copy(), self.y.copy()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                returned = est.fit(X, y)
        except Exception as err:
            self.add("fit", "fail", f"fit raised {_error(err)} on {self.problem_text()}.")
            return None
        self.add("fit", "pass")
        if returned is est:
            self.add("fit_returns_self", "pass")
        else:
            self.add("fit_returns_self", "fail",
                     f"fit returned {type(returned).__name__} instead of the estimator itself; end fit with "
                     "'return self' so that est.fit(X, y).predict(X) works.")
        if np.array_equal(X, self.X) and np.array_equal(y, self.y):
            self.add("fit_keeps_input", "pass")
        else:
            which = "X" if not np.array_equal(X, self.X) else "y"
            self.add("fit_keeps_input", "fail",
                     f"fit modified the training array {which} in place; work on a copy, since the same arrays "
                     "are reused for every classifier.")
        return est

    def _predict(self, est, X):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return est.predict(X)

    def check_predict(self, est):
        n = len(self.X_test)
        try:
            pred = np.asarray(self._predict(est, self.X_test.copy()))
        except Exception as err:
            self.add("predict", "fail", f"predict raised {_error(err)} on {n} test rows after a successful fit.")
            self.add("labels", "skip", "not run because predict failed")
            return None
        if pred.shape != (n,):
            self.add("predict", "fail",
                     f"predict returned an array of shape {pred.shape} for {n} rows; it must return a 1-D array "
                     f"of {n} labels, shape ({n},).")
            pred = pred.reshape(-1) if pred.size == n else None
        else:
            self.add("predict", "pass")
        if pred is None:
            self.add("labels", "skip", "not run because predict returned the wrong number of labels")
            return None
        known = set(self.y.tolist())
        values = [v.item() if isinstance(v, np.generic) else v for v in pred.tolist()]
        foreign = sorted({v for v in values if not isinstance(v, str) or v not in known}, key=repr)
        if foreign:
            self.add("labels", "fail",
                     f"predict returned {_short(foreign)}, which are not training labels {_short(sorted(known))}; "
                     "string labels given to fit must come back as the same strings (keep them in classes_ "
                     "and map predictions back, e.g. classes_[argmax]).")
            return None
        self.add("labels", "pass")
        return np.asarray(values, dtype=object)

    def check_classes(self, est):
        expected = np.array(sorted(set(self.y.tolist())), dtype=object)
        has_proba = hasattr(est, "predict_proba")
        classes = getattr(est, "classes_", None)
        if classes is not None and np.array_equal(np.asarray(classes, dtype=object), expected):
            self.add("classes", "pass")
            return
        what = ("has no classes_ attribute after fit" if classes is None
                else f"has classes_ = {_short(np.asarray(classes).tolist())} instead of the sorted training labels")
        if has_proba:
            self.add("classes", "fail",
                     f"{self.name} {what}, so the columns of predict_proba cannot be matched to labels; set "
                     "classes_ = numpy.unique(y) in fit.")
        else:
            self.add("classes", "warn", f"{self.name} {what}; scikit-learn classifiers set classes_ = numpy.unique(y).")

    def check_proba(self, est):
        if not hasattr(est, "predict_proba"):
            self.add("predict_proba", "skip", "the estimator has no predict_proba (optional)")
            return None
        n, k = len(self.X_test), len(set(self.y.tolist()))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                proba = np.asarray(est.predict_proba(self.X_test.copy()), dtype=float)
        except Exception as err:
            self.add("predict_proba", "fail", f"predict_proba raised {_error(err)} on {n} test rows.")
            return None
        if proba.shape != (n, k):
            self.add("predict_proba", "fail",
                     f"predict_proba returned shape {proba.shape} for {n} rows and {k} classes; it must return "
                     f"({n}, {k}), one column per class in classes_ order.")
            return None
        if not np.isfinite(proba).all():
            self.add("predict_proba", "fail", "predict_proba returned NaN or infinite values; return probabilities.")
            return None
        sums = proba.sum(axis=1)
        if (proba < -1e-9).any() or not np.allclose(sums, 1.0, rtol=0, atol=1e-5):
            self.add("predict_proba", "fail",
                     f"predict_proba rows sum to {sums.min():.3g}..{sums.max():.3g} (minimum entry "
                     f"{proba.min():.3g}) instead of 1; return non-negative probabilities normalised over the "
                     "classes of every row.")
            return None
        self.add("predict_proba", "pass")
        return proba

    def check_deterministic(self, predictions, proba):
        if predictions is None:
            self.add("deterministic", "skip", "not run because predict did not return valid labels")
            return
        est = self.fresh()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(self.X.copy(), self.y.copy())
                again = np.asarray(self._predict(est, self.X_test.copy()), dtype=object).reshape(-1)
                again_proba = (np.asarray(est.predict_proba(self.X_test.copy()), dtype=float)
                               if proba is not None else None)
        except Exception as err:
            self.add("deterministic", "fail", f"a second fit of a fresh copy raised {_error(err)}; fit must be "
                                              "repeatable on a clone.")
            return
        params = self.estimator.get_params(deep=False) if self.clonable else {}
        seeded = "random_state" in params
        hint = (f"with random_state={params['random_state']!r}" if seeded else "(the estimator has no random_state "
                "parameter)")
        fix = ("draw all randomness from a generator seeded by random_state, e.g. "
               "sklearn.utils.check_random_state(self.random_state)" if seeded and params["random_state"] is not None
               else "add a random_state parameter, fix it, and draw all randomness from it")
        differ = int(np.sum(again != predictions)) if len(again) == len(predictions) else len(predictions)
        if differ:
            self.add("deterministic", "fail",
                     f"two fits {hint} predicted different labels for {differ} of {len(predictions)} rows; {fix}.")
            return
        if proba is not None and (again_proba is None or again_proba.shape != proba.shape
                                  or not np.allclose(again_proba, proba, rtol=0, atol=1e-6)):
            self.add("deterministic", "fail",
                     f"two fits {hint} gave different predict_proba values; {fix}.")
            return
        self.add("deterministic", "pass")

    def check_learns(self, predictions):
        if predictions is None:
            self.add("learns", "skip", "not run because predict did not return valid labels")
            return
        chance = 1.0 / len(set(self.y.tolist()))
        accuracy = float(np.mean(predictions == self.y_test.astype(object)))
        if accuracy < chance + 0.25:
            self.add("learns", "warn",
                     f"accuracy on an easy problem with a strong planted signal was {accuracy:.2f} (chance "
                     f"{chance:.2f}); check that fit learns from X and y.")
        else:
            self.add("learns", "pass")


def check_classifier(estimator, name=None, n_checkpoints=21, n_categorical=3, random_state=0, problem=None):
    """Run the compatibility checks on an unfitted estimator.

    Parameters
    ----------
    estimator : object
        An unfitted estimator built for the layout (``n_checkpoints``,
        ``n_categorical``), e.g. by :func:`lrid_benchmarks.plugins.build_classifier`.
    name : str, optional
        Name used in the messages (default: the class name).
    n_checkpoints, n_categorical : int
        Layout of the tiny problem (see :func:`tiny_problem`).
    random_state : int
        Seed of the tiny problem.
    problem : tuple, optional
        ``(X_train, y_train, X_test, y_test)`` to use instead.

    Returns
    -------
    CompatibilityReport
        ``report.ok`` is False when any check failed; ``report.problems``
        lists one sentence per failed check.
    """
    name = name or type(estimator).__name__
    if problem is None:
        problem = tiny_problem(n_checkpoints=n_checkpoints, n_categorical=n_categorical, seed=random_state)
    results = _Checker(estimator, name, random_state, problem).run()
    return CompatibilityReport(name, results)
