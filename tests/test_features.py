import numpy as np
import pandas as pd
import pytest

from lrid_analysis import features as F
from lrid_analysis.dataset import LAYER_POSITIONS, AnalysisView, to_view
from lrid_analysis.observables import MEASURE_GROUPS
from lrid_analysis.synthetic import public_meta, synthetic_table


@pytest.fixture(scope="module")
def view45():
    meta = public_meta().sample(120, random_state=1)
    return to_view(synthetic_table(meta, signal=1.0, seed=3), observables="all45")


def _toy_view(n_traj=7, n_ckpt=21, observables=("weightabs_mean", "actraw_norm", "gradavgsq_id"), seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_traj, n_ckpt, len(observables))).astype(np.float32)
    positions = rng.integers(0, 3, size=n_traj)
    onehot = np.eye(3, dtype=np.float32)[positions]
    meta = pd.DataFrame({"learning_rule": rng.choice(["adam", "sgdm"], size=n_traj),
                         "layer_position": np.array(LAYER_POSITIONS)[positions]})
    epochs = np.tile(np.arange(n_ckpt) * 5.0, (n_traj, 1))
    return AnalysisView(X=X, layer_onehot=onehot, meta=meta, observables=list(observables), epochs=epochs)


def test_check_finite_names_statistics_and_row_counts():
    view = _toy_view(n_traj=9)
    view.X[[1, 4], 3, 0] = np.inf          # weightabs_mean: 2 trajectories
    view.X[2, 0, 2] = np.nan               # gradavgsq_id: 1 trajectory
    view.X[2, 5, 2] = np.nan               # same trajectory again: still 1
    with pytest.raises(ValueError) as err:
        F.check_finite(view)
    message = str(err.value)
    assert "weightabs_mean (2 of 9 trajectories)" in message
    assert "gradavgsq_id (1 of 9 trajectories)" in message
    assert "actraw_norm" not in message
    assert "admissible" in message
    with pytest.raises(ValueError):
        F.flatten(view)
    assert F.flatten(view, check=False).shape == (9, 3 * 21 + 3)


def test_select_admissible_sets_are_finite_and_all45_is_not(view45):
    for name in MEASURE_GROUPS:
        out = F.select(view45, name)
        assert out.observables == list(MEASURE_GROUPS[name])
        assert np.isfinite(out.X).all()
    with pytest.raises(ValueError, match="non-finite"):
        F.select(view45, "all45")
    explicit = F.select(view45, ["actraw_mean", "weightsq_median"])
    j = view45.observables.index("weightsq_median")
    np.testing.assert_array_equal(explicit.X[:, :, 1], view45.X[:, :, j])


def test_flatten_is_statistic_major_with_onehot_last(view45):
    view = F.select(view45, "all")
    n, c, k = view.X.shape
    flat = F.flatten(view)
    assert flat.shape == (n, k * c + 3)
    for j in range(k):
        for t in range(c):
            np.testing.assert_array_equal(flat[:, j * c + t], view.X[:, t, j])
    np.testing.assert_array_equal(flat[:, -3:], view.layer_onehot)
    assert (flat[:, -3:].sum(axis=1) == 1).all()
    assert F.flatten(view, include_position=False).shape == (n, k * c)


def test_feature_groups_by_statistic_and_measure_partition_the_columns(view45):
    view = F.select(view45, "all")
    n_ckpt = view.X.shape[1]
    flat = F.flatten(view)
    groups = F.feature_groups("all", n_ckpt)
    assert list(groups)[:-1] == list(MEASURE_GROUPS["all"]) and list(groups)[-1] == "layer_position"
    cols = np.concatenate(list(groups.values()))
    np.testing.assert_array_equal(np.sort(cols), np.arange(flat.shape[1]))
    for j, name in enumerate(view.observables):
        np.testing.assert_array_equal(flat[:, groups[name]], view.X[:, :, j])
    np.testing.assert_array_equal(flat[:, groups["layer_position"]], view.layer_onehot)

    by_measure = F.feature_groups(view.observables, n_ckpt, by="measure")
    assert list(by_measure) == ["weight", "act", "grad", "layer_position"]
    for measure in ("weight", "act", "grad"):
        expected = np.concatenate([groups[name] for name in MEASURE_GROUPS[measure]])
        np.testing.assert_array_equal(np.sort(by_measure[measure]), np.sort(expected))
    no_pos = F.feature_groups("grad", 4, include_position=False)
    assert list(no_pos) == list(MEASURE_GROUPS["grad"])
    np.testing.assert_array_equal(no_pos["gradavgraw_id"], np.arange(4, 8))
    with pytest.raises(ValueError, match="by must be"):
        F.feature_groups("all", 21, by="layer")
    with pytest.raises(ValueError, match="unknown observable"):
        F.feature_groups(["weightabs_mean", "nonsense"], 21)


def test_feature_names_align_with_the_layout():
    names = F.feature_names(["actraw_norm", "gradavgabs_id"], 3)
    assert names == ["actraw_norm@0", "actraw_norm@1", "actraw_norm@2", "gradavgabs_id@0", "gradavgabs_id@1",
                     "gradavgabs_id@2", "layer_position=early", "layer_position=middle", "layer_position=deep"]
    groups = F.feature_groups(["actraw_norm", "gradavgabs_id"], 3)
    assert [names[i] for i in groups["gradavgabs_id"]] == ["gradavgabs_id@0", "gradavgabs_id@1", "gradavgabs_id@2"]
    assert len(F.feature_names("all", 21)) == 24 * 21 + 3


def test_sequences_layout():
    view = _toy_view()
    seq, onehot = F.sequences(view)
    assert seq.shape == (7, 3, 21)
    for i in range(7):
        np.testing.assert_array_equal(seq[i], view.X[i].T)
    np.testing.assert_array_equal(onehot, view.layer_onehot)


def test_subsample_takes_fixed_period_from_admissible_random_starts():
    view = _toy_view(n_traj=3000, n_ckpt=21, seed=1)
    k, period = 4, 5  # span 15: starts 0..5
    out = F.subsample(view, k, period, seed=7)
    assert out.X.shape == (3000, k, 3) and out.epochs.shape == (3000, k)
    starts = out.meta["subsample_start"].to_numpy()
    assert starts.min() == 0 and starts.max() == 20 - (k - 1) * period
    for i in range(0, 3000, 97):
        idx = starts[i] + period * np.arange(k)
        np.testing.assert_array_equal(out.X[i], view.X[i, idx])
        np.testing.assert_array_equal(out.epochs[i], view.epochs[i, idx])
    # uniform over the 6 admissible starts: each frequency near 1/6 (sd ~ 0.0068)
    freq = np.bincount(starts, minlength=6) / len(starts)
    assert np.abs(freq - 1 / 6).max() < 0.03
    # seeded: same seed same draw, other seed another draw; the input is untouched
    again = F.subsample(view, k, period, seed=7)
    np.testing.assert_array_equal(again.X, out.X)
    other = F.subsample(view, k, period, seed=8)
    assert (other.meta["subsample_start"].to_numpy() != starts).any()
    assert "subsample_start" not in view.meta.columns and view.X.shape[1] == 21


def test_subsample_edges_and_errors():
    view = _toy_view(n_ckpt=21)
    full = F.subsample(view, 21, 1, seed=0)
    np.testing.assert_array_equal(full.X, view.X)
    widest = F.subsample(view, 5, 5, seed=0)  # checkpoints 0, 5, 10, 15, 20 only
    np.testing.assert_array_equal(widest.X, view.X[:, ::5])
    with pytest.raises(ValueError, match="cannot take 5 samples 6 checkpoints apart"):
        F.subsample(view, 5, 6)
    with pytest.raises(ValueError, match="period"):
        F.subsample(view, 3, 0)
    with pytest.raises(ValueError, match="n_samples"):
        F.subsample(view, 0, 1)


def test_window_thirds():
    view = _toy_view(n_ckpt=21)
    expected = {"early": range(0, 7), "middle": range(7, 14), "late": range(14, 21)}
    for part, idx in expected.items():
        out = F.window(view, part)
        np.testing.assert_array_equal(out.X, view.X[:, list(idx)])
        np.testing.assert_array_equal(out.epochs, view.epochs[:, list(idx)])
    odd = _toy_view(n_ckpt=10)
    assert [list(F.window_checkpoints(10, p)) for p in F.WINDOWS] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    np.testing.assert_array_equal(F.window(odd, "late").X, odd.X[:, 7:])
    with pytest.raises(ValueError, match="unknown window"):
        F.window(view, "first")


def test_average_collapses_the_trajectory():
    view = _toy_view()
    out = F.average(view)
    assert out.X.shape == (7, 1, 3)
    np.testing.assert_allclose(out.X[:, 0], view.X.astype(np.float64).mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(out.epochs[:, 0], np.full(7, 50.0))
    assert F.flatten(out).shape == (7, 3 + 3)


def test_observable_sets_are_defined_once():
    """The experiments, the features and the data loader resolve set names through one table."""
    from lrid_analysis.dataset import resolve_observables as dataset_resolve
    from lrid_analysis.experiments.options import observable_sets
    from lrid_analysis.observables import ADMISSIBLE_NAMES, OBSERVABLE_NAMES, OBSERVABLE_SETS, resolve_observables

    assert OBSERVABLE_SETS["all"] == ADMISSIBLE_NAMES and OBSERVABLE_SETS["all45"] == OBSERVABLE_NAMES
    assert sum(len(OBSERVABLE_SETS[m]) for m in ("weight", "act", "grad")) == 24
    for name in OBSERVABLE_SETS:
        assert resolve_observables(name) == list(OBSERVABLE_SETS[name]) == dataset_resolve(name)
        assert observable_sets(name, ())[name] == list(OBSERVABLE_SETS[name])
    assert not hasattr(F, "OBSERVABLE_SETS")
    assert resolve_observables(["grad", "gradavgsq_id", "actabs_norm"]) == list(OBSERVABLE_SETS["grad"]) + ["actabs_norm"]
    with pytest.raises(ValueError, match="sets: weight, act, grad, gradfwd, all, all_fwd, all45"):
        resolve_observables("weights")
    # the forward-Jacobian variant of all: the paper's gradient set replaced, nothing else
    assert OBSERVABLE_SETS["all_fwd"] == OBSERVABLE_SETS["weight"] + OBSERVABLE_SETS["act"] + OBSERVABLE_SETS["gradfwd"]
    assert [n.replace("gradfwd", "gradavg") for n in OBSERVABLE_SETS["gradfwd"]] == list(OBSERVABLE_SETS["grad"])


def test_forward_gradient_sets_in_the_feature_builders():
    names = F.resolve_observables("all_fwd")
    by_measure = F.feature_groups("all_fwd", 4, by="measure")
    assert list(by_measure) == ["weight", "act", "gradfwd", "layer_position"]
    first = names.index("gradfwdabs_id")
    np.testing.assert_array_equal(by_measure["gradfwd"], np.arange(first * 4, (first + 3) * 4))
    assert F.feature_names("gradfwd", 2, include_position=False) == [
        "gradfwdabs_id@0", "gradfwdabs_id@1", "gradfwdraw_id@0", "gradfwdraw_id@1", "gradfwdsq_id@0", "gradfwdsq_id@1"]
