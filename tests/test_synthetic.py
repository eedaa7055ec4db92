"""Tests for lrid_analysis.synthetic: public metadata and planted-signal tables."""

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score

from lrid_analysis.dataset import SCHEMA, to_view, validate_table
from lrid_analysis.observables import ADMISSIBLE_NAMES, OBSERVABLE_NAMES
from lrid_analysis.synthetic import network_id, public_meta, synthetic_table

NETWORK_COLUMNS = ["task", "architecture", "learning_rule", "batch_size", "model_seed", "dataset_seed"]


@pytest.fixture(scope="module")
def meta():
    return public_meta()


def test_public_meta_shape_and_balance(meta):
    assert meta.shape == (20736, 10)
    assert meta["learning_rule"].value_counts().to_dict() == {
        "adam": 5184, "sgdm": 5184, "information": 5184, "feedback": 5184
    }
    assert set(meta["task"]) == {"imagenet", "simclr", "audionet", "cifar10"}
    assert set(meta["batch_size"]) == {128, 256, 512}
    assert set(meta["layer_position_inferred"]) == {"early", "middle", "deep"}
    assert meta["layer_name"].nunique() == 86
    for seed in ("model_seed", "dataset_seed"):
        assert meta[seed].dtype == "Int64"
        assert meta[seed].isna().any() and set(meta[seed].dropna()) == {0}


def test_public_meta_networks(meta):
    networks = meta.groupby(NETWORK_COLUMNS, dropna=False).ngroups
    assert networks == 1056 == 22 * 12 * 4  # (task, architecture) pairs x settings x rules
    assert meta.groupby(["task", "architecture"]).ngroups == 22
    settings = meta.groupby(["batch_size", "model_seed", "dataset_seed"], dropna=False).ngroups
    assert settings == 12
    # dropping null seeds would lose networks: nulls count as a seed value
    assert meta.groupby(NETWORK_COLUMNS, dropna=True).ngroups < networks
    ids = network_id(meta)
    assert ids.nunique() == 1056
    assert (ids.groupby([meta[c] for c in NETWORK_COLUMNS], dropna=False).nunique() == 1).all()


def test_network_id_format():
    row = pd.DataFrame({
        "task": ["imagenet"], "architecture": ["resnet18"], "learning_rule": ["adam"], "batch_size": [256],
        "model_seed": pd.array([0], dtype="Int64"), "dataset_seed": pd.array([None], dtype="Int64"),
    })
    assert network_id(row).tolist() == ["imagenet-resnet18-adam-bs256-ms0-dsNone"]


def test_synthetic_table_follows_the_contract(small_meta):
    table = synthetic_table(small_meta, conditions=((1.0, 0.0, 0), (0.25, 0.5, 3)), source="demo")
    assert len(table) == len(small_meta) * 2 * 21
    assert list(table.columns) == SCHEMA.names
    validated = validate_table(table, where="synthetic")
    assert (validated["source"] == "demo").all()
    assert validated["layer_index"].isna().all()  # depth order unknown for public meta rows
    assert np.isfinite(table[list(ADMISSIBLE_NAMES)].to_numpy()).all()
    inadmissible = [n for n in OBSERVABLE_NAMES if n not in ADMISSIBLE_NAMES]
    assert np.isinf(table[inadmissible].to_numpy()).any()  # occasional divergences, as in the public data
    view = to_view(table)
    assert view.X.shape == (2 * len(small_meta), 21, 24)
    assert sorted(set(view.meta["unit_fraction"])) == [0.25, 1.0]


def test_synthetic_table_is_seeded(small_meta):
    meta = small_meta.iloc[:12]
    a = synthetic_table(meta, seed=4)
    pd.testing.assert_frame_equal(a, synthetic_table(meta, seed=4))
    assert not np.allclose(a["actraw_mean"], synthetic_table(meta, seed=5)["actraw_mean"])


def test_synthetic_table_keeps_a_given_layer_index(small_meta):
    meta = small_meta.iloc[:8].assign(layer_index=np.arange(8))
    table = synthetic_table(meta, n_checkpoints=3)
    assert table["layer_index"].tolist() == np.repeat(np.arange(8), 3).tolist()


def _cv_accuracy(view, model):
    features = view.X.mean(axis=1)  # average each trajectory over training
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    return cross_val_score(model, features, view.y, cv=folds).mean()


@pytest.mark.parametrize(
    "model",
    [LogisticRegression(max_iter=2000), RandomForestClassifier(n_estimators=50, random_state=0, n_jobs=1)],
    ids=["logistic", "forest"],
)
def test_planted_signal_is_separable_only_when_present(small_meta, model):
    chance = 0.25
    strong = to_view(synthetic_table(small_meta, signal=2.0, seed=1))
    absent = to_view(synthetic_table(small_meta, signal=0.0, seed=1))
    assert _cv_accuracy(strong, model) > 0.8
    assert abs(_cv_accuracy(absent, model) - chance) < 0.08
