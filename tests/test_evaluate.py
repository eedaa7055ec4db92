import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from sklearn.model_selection import GridSearchCV

from lrid_analysis import evaluate as E
from lrid_analysis import features as F
from lrid_analysis.dataset import to_view
from lrid_analysis.splits import CategoryBalancedSplit, HeldOutTask
from lrid_analysis.synthetic import public_meta, synthetic_table


@pytest.fixture(scope="module")
def data():
    meta = public_meta()
    # a few networks of every task, all their layers
    runs = meta.drop_duplicates(["task", "architecture", "learning_rule"]).index
    keep = meta.loc[runs, ["task", "architecture", "learning_rule", "batch_size", "model_seed", "dataset_seed"]]
    subset = meta.merge(keep, how="inner").groupby(["task", "learning_rule"]).head(12)
    view = F.select(to_view(synthetic_table(subset, signal=0.25, seed=2)), "all")
    return view, F.flatten(view), view.y


def _splits(view, n=3):
    return list(CategoryBalancedSplit(n_splits=n).split(view))


def test_scores_match_an_independent_fit(data):
    view, X, y = data
    splits = _splits(view)
    est = LogisticRegression(max_iter=300)
    result = E.cross_validate(est, X, y, splits, verbose=False)
    labels = sorted(set(y))
    assert result.labels == labels
    assert result.confusion.shape == (3, 4, 4) and result.train_confusion.shape == (3, 4, 4)
    for k, (train, test) in enumerate(splits):
        model = LogisticRegression(max_iter=300).fit(X[train], y[train])
        pred, pred_train = model.predict(X[test]), model.predict(X[train])
        row = result.table.iloc[k]
        assert row["test_accuracy"] == pytest.approx(np.mean(pred == y[test]))
        assert row["train_accuracy"] == pytest.approx(np.mean(pred_train == y[train]))
        assert row["test_balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y[test], pred))
        np.testing.assert_array_equal(result.confusion[k], sk_confusion_matrix(y[test], pred, labels=labels))
        np.testing.assert_array_equal(result.train_confusion[k],
                                      sk_confusion_matrix(y[train], pred_train, labels=labels))
        assert (row["n_train"], row["n_test"]) == (len(train), len(test))
        for label in labels:  # one-vs-rest d' by counting hits and false alarms
            hit = np.mean(pred[y[test] == label] == label)
            fa = np.mean(pred[y[test] != label] == label)
            z = np.clip(stats.norm.ppf([hit, fa]), -5, 5)
            assert row[f"dprime_{label}"] == pytest.approx(z[0] - z[1])
    assert result.table["test_accuracy"].mean() > 0.4  # planted signal: chance is 0.25
    assert (result.table["params"] == "null").all()
    assert (result.table["fit_seconds"] > 0).all() and (result.table["predict_seconds"] > 0).all()


def test_summary_is_mean_and_sem(data):
    view, X, y = data
    result = E.cross_validate(LogisticRegression(max_iter=300), X, y, _splits(view, 4), verbose=False)
    summary = result.summary()
    acc = result.table["test_accuracy"].to_numpy()
    assert summary.loc["test_accuracy", "mean"] == pytest.approx(acc.mean())
    assert summary.loc["test_accuracy", "sem"] == pytest.approx(stats.sem(acc))
    assert summary.loc["test_accuracy", "n"] == 4
    assert "split" not in summary.index and "params" not in summary.index
    np.testing.assert_allclose(result.mean_confusion(normalize=True).sum(axis=1), 1.0)


def test_parallel_equals_sequential(data):
    view, X, y = data
    splits = _splits(view, 4)
    est = RandomForestClassifier(n_estimators=15, max_depth=6, random_state=0, n_jobs=1)
    one = E.cross_validate(est, X, y, splits, n_jobs=1, verbose=False)
    two = E.cross_validate(est, X, y, splits, n_jobs=2, verbose=False)
    timing = ["fit_seconds", "predict_seconds"]
    pd.testing.assert_frame_equal(one.table.drop(columns=timing), two.table.drop(columns=timing))
    np.testing.assert_array_equal(one.confusion, two.confusion)


def test_estimators_predictions_and_best_params(data):
    view, X, y = data
    splits = _splits(view, 2)
    grid = GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.01, 1.0]}, cv=2)
    result = E.cross_validate(grid, X, y, splits, return_estimators=True, return_predictions=True, verbose=False)
    assert len(result.estimators) == 2
    for k, (train, test) in enumerate(splits):
        params = json.loads(result.table.loc[k, "params"])
        assert params == result.estimators[k].best_params_ and params["C"] in (0.01, 1.0)
        pred = result.predictions.query("split == @k and set == 'test'")
        np.testing.assert_array_equal(pred["index"].to_numpy(), test)
        np.testing.assert_array_equal(pred["y_pred"].to_numpy(dtype=object),
                                      result.estimators[k].predict(X[test]).astype(object))
        assert len(result.predictions.query("split == @k and set == 'train'")) == len(train)


def test_x_test_scores_other_features_of_the_same_rows(data):
    view, X, y = data
    splits = _splits(view, 2)
    early, late = F.flatten(F.window(view, "early")), F.flatten(F.window(view, "late"))
    result = E.cross_validate(LogisticRegression(max_iter=300), late, y, splits, X_test=early,
                              return_estimators=True, verbose=False)
    for k, (train, test) in enumerate(splits):
        expected = np.mean(result.estimators[k].predict(early[test]) == y[test])
        assert result.table.loc[k, "test_accuracy"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="X_test has"):
        E.cross_validate(LogisticRegression(), X, y, splits, X_test=X[:5], verbose=False)


def test_splitter_with_meta_labels_folds(data):
    view, X, y = data
    result = E.cross_validate(LogisticRegression(max_iter=300), X, y, HeldOutTask(), meta=view, verbose=False)
    assert result.table["fold"].tolist() == sorted(view.meta["task"].unique())
    tasks = view.meta["task"].to_numpy()
    assert result.table["n_test"].tolist() == [int((tasks == t).sum()) for t in result.table["fold"]]


def test_dprime_and_balanced_accuracy_closed_forms():
    cm = np.array([[8, 2, 0], [1, 6, 3], [0, 0, 10]])
    # class 0: hit 8/10, false alarms 1/20; class 2: hit 1.0 -> Z clipped to 5, fa 3/20
    expected0 = stats.norm.ppf(0.8) - stats.norm.ppf(1 / 20)
    expected2 = 5.0 - stats.norm.ppf(3 / 20)
    d = E.dprime(cm)
    assert d[0] == pytest.approx(expected0) and d[2] == pytest.approx(expected2)
    assert E.dprime(np.diag([5, 5]))[0] == pytest.approx(10.0)
    assert np.isnan(E.dprime(np.array([[3, 0], [0, 0]]))[1])
    assert E.balanced_accuracy(cm) == pytest.approx((0.8 + 0.6 + 1.0) / 3)
    y_true = ["a", "a", "b", "c", "c", "c"]
    y_pred = ["a", "b", "b", "c", "a", "c"]
    np.testing.assert_array_equal(E.confusion_matrix(y_true, y_pred, ["a", "b", "c"]),
                                  sk_confusion_matrix(y_true, y_pred, labels=["a", "b", "c"]))


def test_bad_input_is_refused(data):
    view, X, y = data
    with pytest.raises(ValueError, match="rows but y has"):
        E.cross_validate(LogisticRegression(), X, y[:-1], _splits(view, 1), verbose=False)
    with pytest.raises(ValueError, match="in both train and test"):
        E.cross_validate(LogisticRegression(), X, y, [(np.arange(10), np.arange(5, 20))], verbose=False)
    with pytest.raises(ValueError, match="missing from labels"):
        E.cross_validate(LogisticRegression(), X, y, _splits(view, 1), labels=["adam", "sgdm"], verbose=False)
    with pytest.raises(ValueError, match="out of range"):
        E.cross_validate(LogisticRegression(), X, y, [(np.arange(10), np.array([len(y)]))], verbose=False)


def test_save_and_load_results(tmp_path, data):
    view, X, y = data
    result = E.cross_validate(LogisticRegression(max_iter=300), X, y, _splits(view, 2), verbose=False)
    params = {"classifier": "logistic", "observables": "all", "splits": {"n_splits": 2, "seed": 0},
              "random_state": 0}
    pq_path, js_path = E.save_results(result, tmp_path / "out", "logistic_all", params, data=view)
    table, summary = E.load_results(tmp_path / "out", "logistic_all")
    pd.testing.assert_frame_equal(table, result.table, check_dtype=False)
    assert summary["params"] == params
    assert summary["seeds"] == {"splits.seed": 0, "random_state": 0}
    assert summary["data"]["n_trajectories"] == len(view) and summary["data"]["observables"] == view.observables
    assert summary["summary"]["test_accuracy"]["mean"] == pytest.approx(result.table["test_accuracy"].mean())
    assert summary["labels"] == result.labels and np.array_equal(summary["confusion"], result.confusion)
    packages = summary["run"]["packages"]
    assert packages["numpy"] == np.__version__ and packages["pandas"] == pd.__version__
    assert {"scikit-learn", "xgboost", "torch", "lrid"} <= set(packages) and "timestamp" in summary["run"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["logistic_all.json", "logistic_all.parquet"]
    # NaN becomes null: the file is strict JSON
    frame = pd.DataFrame({"split": [0], "test_accuracy": [float("nan")]})
    _, js = E.save_results(frame, tmp_path / "out", "nan", {})
    json.loads(js.read_text(), parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    with pytest.raises(FileNotFoundError, match="no saved result"):
        E.load_results(tmp_path / "out", "missing")
    with pytest.raises(ValueError, match="invalid result name"):
        E.save_results(frame, tmp_path, "../x", {})


