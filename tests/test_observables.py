"""Tests for lrid_analysis.observables: catalogue, statistics, obfuscation."""

import math
import warnings

import numpy as np
import pytest
import scipy.stats

from lrid_analysis import observables as obs
from lrid_analysis.observables import (
    ADMISSIBLE_NAMES,
    MEASURE_GROUPS,
    OBSERVABLE_NAMES,
    activation_observables,
    apply_function,
    catalogue,
    gradavg_observables,
    n_kept_units,
    nearest_rank_percentile,
    obfuscate_units,
    parse_observable,
    select_observables,
    unit_statistics,
    weight_observables,
)

# ---------------------------------------------------------------- references


def reference_percentile(values, q):
    """The reference code's percentile, one value at a time (Python's round is half-to-even)."""
    descending = sorted(values, reverse=True)
    return descending[round((len(values) - 1) * (1 - q / 100))]


def reference_statistics(values):
    """The seven statistics of a 1-D array, each from numpy / scipy / the definition."""
    values = np.asarray(values, dtype=np.float64)
    median = reference_percentile(list(values), 50)
    return {
        "mean": np.mean(values),
        "var": np.var(values),
        "norm": np.linalg.norm(values),
        "kurtosis": scipy.stats.kurtosis(values, fisher=False, bias=True),
        "median": median,
        "thirdquartile": reference_percentile(list(values), 75),
        "skew": 3 * (np.mean(values) - median) / np.std(values),
    }


FUNCTIONS_REF = {"abs": np.abs, "raw": lambda v: v, "sq": np.square}

# ---------------------------------------------------------------- catalogue


def test_observable_names_follow_public_order():
    stats = sorted(["norm", "mean", "median", "thirdquartile", "var", "skew", "kurtosis"])
    expected = [f"{m}{f}_{s}" for m in ("weight", "act") for f in ("abs", "raw", "sq") for s in stats]
    expected += ["gradavgabs_id", "gradavgraw_id", "gradavgsq_id"]
    assert list(OBSERVABLE_NAMES) == expected
    assert len(OBSERVABLE_NAMES) == 45 == len(set(OBSERVABLE_NAMES))


def test_admissible_names():
    expected = {
        "weightabs_mean", "weightabs_median", "weightabs_norm", "weightabs_thirdquartile", "weightabs_var",
        "weightraw_mean", "weightraw_median", "weightraw_norm", "weightraw_thirdquartile", "weightraw_var",
        "weightsq_mean", "weightsq_median", "weightsq_thirdquartile",
        "actabs_mean", "actabs_median", "actabs_norm", "actabs_thirdquartile",
        "actraw_mean", "actraw_median", "actraw_norm", "actraw_thirdquartile",
        "gradavgabs_id", "gradavgraw_id", "gradavgsq_id",
    }
    assert len(ADMISSIBLE_NAMES) == 24
    assert set(ADMISSIBLE_NAMES) == expected
    # in public order
    assert list(ADMISSIBLE_NAMES) == [n for n in OBSERVABLE_NAMES if n in expected]


def test_measure_groups():
    assert set(MEASURE_GROUPS) == {"weight", "act", "grad", "all"}
    assert [len(MEASURE_GROUPS[g]) for g in ("weight", "act", "grad")] == [13, 8, 3]
    assert MEASURE_GROUPS["all"] == MEASURE_GROUPS["weight"] + MEASURE_GROUPS["act"] + MEASURE_GROUPS["grad"]
    assert MEASURE_GROUPS["all"] == ADMISSIBLE_NAMES
    for group, prefix in (("weight", "weight"), ("act", "act"), ("grad", "gradavg")):
        assert all(name.startswith(prefix) for name in MEASURE_GROUPS[group])


def test_catalogue_table():
    table = catalogue()
    assert list(table.columns) == ["name", "measure", "function", "statistic", "admissible"]
    assert table["name"].tolist() == list(OBSERVABLE_NAMES)
    rebuilt = table["measure"] + table["function"] + "_" + table["statistic"]
    assert rebuilt.tolist() == list(OBSERVABLE_NAMES)
    assert int(table["admissible"].sum()) == 24
    act = table.query("measure == 'act' and admissible")["name"].tolist()
    assert act == list(MEASURE_GROUPS["act"])


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"measure": "act", "admissible": True}, list(MEASURE_GROUPS["act"])),
        ({"statistic": "id"}, ["gradavgabs_id", "gradavgraw_id", "gradavgsq_id"]),
        ({"function": ["abs", "sq"], "statistic": "median"},
         ["weightabs_median", "weightsq_median", "actabs_median", "actsq_median"]),
        ({"measure": "weight", "function": "sq", "admissible": True},
         ["weightsq_mean", "weightsq_median", "weightsq_thirdquartile"]),
        ({}, list(OBSERVABLE_NAMES)),
    ],
)
def test_select_observables(kwargs, expected):
    assert select_observables(**kwargs) == expected


def test_select_observables_inadmissible_is_the_complement():
    others = select_observables(admissible=False)
    assert len(others) == 21
    assert set(others) | set(ADMISSIBLE_NAMES) == set(OBSERVABLE_NAMES)
    assert not set(others) & set(ADMISSIBLE_NAMES)


def test_select_observables_unknown_part_lists_choices():
    with pytest.raises(ValueError, match="unknown measure") as err:
        select_observables(measure="spikes")
    assert "weight" in str(err.value) and "gradavg" in str(err.value)
    with pytest.raises(ValueError, match="unknown statistic"):
        select_observables(statistic=["mean", "mode"])


def test_parse_observable():
    assert parse_observable("weightabs_median") == ("weight", "abs", "median")
    assert parse_observable("actsq_thirdquartile") == ("act", "sq", "thirdquartile")
    assert parse_observable("gradavgraw_id") == ("gradavg", "raw", "id")
    for name in OBSERVABLE_NAMES:
        measure, function, statistic = parse_observable(name)
        assert f"{measure}{function}_{statistic}" == name


def test_parse_observable_unknown_lists_known_names():
    with pytest.raises(ValueError, match="unknown observable 'weightabs_mode'") as err:
        parse_observable("weightabs_mode")
    assert all(name in str(err.value) for name in OBSERVABLE_NAMES)


# ---------------------------------------------------------------- percentiles


@pytest.mark.parametrize(
    "values, q, expected",
    [
        ([1, 2, 3, 4], 50, 2),  # index 1.5 -> 2 in descending order
        ([4, 1, 3, 2], 50, 2),
        ([1, 2, 3, 4, 5], 50, 3),
        ([1, 2, 3, 4, 5, 6], 50, 4),  # index 2.5 -> 2 in [6, 5, 4, ...]
        ([1, 2, 3, 4], 75, 3),  # index 0.75 -> 1
        ([1, 2, 3], 75, 3),  # index 0.5 -> 0 (half to even), not 2
        ([1, 2, 3, 4, 5], 75, 4),
        ([5], 50, 5),
        ([3, 9, 1], 0, 1),
        ([3, 9, 1], 100, 9),
    ],
)
def test_nearest_rank_percentile_hand_cases(values, q, expected):
    assert nearest_rank_percentile(np.array(values, dtype=float), q) == expected


@pytest.mark.parametrize(
    "values, ours, numpy_nearest",
    [([1, 2, 3, 4], 2, 3), ([1, 2, 3, 4, 5, 6], 4, 3), ([10, 20], 20, 10)],
)
def test_median_differs_from_numpy_nearest_for_even_n(values, ours, numpy_nearest):
    # half-to-even rounding of the index on a descending sort is not numpy's ascending one
    x = np.array(values, dtype=float)
    assert np.percentile(x, 50, method="nearest") == numpy_nearest
    assert nearest_rank_percentile(x, 50) == ours


def test_median_agrees_with_numpy_nearest_for_odd_n():
    rng = np.random.default_rng(0)
    for n in (1, 3, 5, 9, 31):
        x = rng.normal(size=n)
        assert nearest_rank_percentile(x, 50) == np.percentile(x, 50, method="nearest") == np.median(x)


def test_nearest_rank_percentile_matches_reference_on_random_data():
    rng = np.random.default_rng(1)
    for n in range(1, 14):
        x = rng.normal(size=(3, n))
        for q in (25.0, 50.0, 75.0, 90.0):
            got = nearest_rank_percentile(x, q)
            assert got.shape == (3,)
            assert got.tolist() == [reference_percentile(list(row), q) for row in x]


def test_nearest_rank_percentile_axis():
    x = np.random.default_rng(2).normal(size=(4, 6, 5))
    got = nearest_rank_percentile(x, 50, axis=1)
    assert got.shape == (4, 5)
    expected = [[reference_percentile(list(x[i, :, j]), 50) for j in range(5)] for i in range(4)]
    np.testing.assert_array_equal(got, expected)


# ---------------------------------------------------------------- statistics


def test_apply_function():
    x = np.array([-2.0, 0.5, 3.0])
    np.testing.assert_array_equal(apply_function(x, "abs"), [2.0, 0.5, 3.0])
    np.testing.assert_array_equal(apply_function(x, "raw"), x)
    np.testing.assert_array_equal(apply_function(x, "sq"), [4.0, 0.25, 9.0])
    with pytest.raises(ValueError, match="unknown function 'log'"):
        apply_function(x, "log")


@pytest.mark.parametrize("n_units", [2, 7, 40, 101])
def test_unit_statistics_match_numpy_and_scipy(n_units):
    rng = np.random.default_rng(n_units)
    x = np.concatenate([rng.normal(1.0, 2.0, size=(2, n_units)), rng.exponential(size=(2, n_units))])
    got = unit_statistics(x)
    assert set(got) == set(obs.STATISTICS)
    for row in range(len(x)):
        expected = reference_statistics(x[row])
        for stat, value in expected.items():
            assert got[stat].shape == (len(x),)
            np.testing.assert_allclose(got[stat][row], value, rtol=1e-12, atol=1e-12, err_msg=stat)


def test_unit_statistics_subset_and_errors():
    x = np.arange(12.0).reshape(2, 6)
    assert set(unit_statistics(x, statistics=("mean", "skew"))) == {"mean", "skew"}
    with pytest.raises(ValueError, match="unknown statistic 'mode'"):
        unit_statistics(x, statistics=("mode",))
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        unit_statistics(np.arange(6.0))
    with pytest.raises(ValueError, match=r"shape \(2, 0\)"):
        unit_statistics(np.zeros((2, 0)))


@pytest.mark.parametrize("constant", [0.0, 3.5])
def test_zero_variance_gives_nan_or_inf_without_warnings(constant):
    x = np.full((2, 9), constant)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        stats = unit_statistics(x)
        weight = weight_observables(np.full((3, 3), constant))
        act = activation_observables(np.full((4, 2, 3), constant))
        single_unit = unit_statistics(np.array([[1.0], [2.0]]))
    np.testing.assert_array_equal(stats["mean"], constant)
    np.testing.assert_array_equal(stats["var"], 0.0)
    np.testing.assert_array_equal(stats["median"], constant)
    for stat in ("skew", "kurtosis"):
        assert not np.isfinite(stats[stat]).any()
        assert not np.isfinite(single_unit[stat]).any()
    for values, measure in ((weight, "weight"), (act, "act")):
        for function in ("abs", "raw", "sq"):
            assert values[f"{measure}{function}_var"] == 0.0
            assert not math.isfinite(values[f"{measure}{function}_skew"])
            assert not math.isfinite(values[f"{measure}{function}_kurtosis"])
            assert math.isfinite(values[f"{measure}{function}_mean"])


def test_weight_observables_reduce_all_axes():
    kernel = np.random.default_rng(3).normal(size=(3, 4, 5, 2))
    got = weight_observables(kernel)
    assert set(got) == {n for n in OBSERVABLE_NAMES if n.startswith("weight")}
    for function, fn in FUNCTIONS_REF.items():
        expected = reference_statistics(fn(kernel).ravel())
        for stat, value in expected.items():
            assert got[f"weight{function}_{stat}"] == pytest.approx(value, rel=1e-12, abs=1e-12)
            assert isinstance(got[f"weight{function}_{stat}"], float)


def test_activation_observables_average_per_example_statistics():
    acts = np.random.default_rng(4).normal(size=(7, 3, 4, 5))
    got = activation_observables(acts)
    assert set(got) == {n for n in OBSERVABLE_NAMES if n.startswith("act")}
    for function, fn in FUNCTIONS_REF.items():
        per_example = [reference_statistics(fn(example).ravel()) for example in acts]
        for stat in per_example[0]:
            expected = np.mean([s[stat] for s in per_example])
            assert got[f"act{function}_{stat}"] == pytest.approx(expected, rel=1e-12, abs=1e-12)
    # pooling all examples first would give a different norm: the mean of per-example norms is smaller
    assert got["actraw_norm"] < np.linalg.norm(acts)


def test_gradavg_observables():
    g = np.random.default_rng(5).normal(size=9)
    got = gradavg_observables(g)
    assert got == pytest.approx(
        {"gradavgabs_id": np.mean(np.abs(g)), "gradavgraw_id": np.mean(g), "gradavgsq_id": np.mean(g**2)},
        rel=1e-12,
    )
    assert gradavg_observables(g[:, None]) == got


# ---------------------------------------------------------------- obfuscation


@pytest.mark.parametrize(
    "n_units, fraction, expected",
    [(10, 0.25, 3), (10, 0.001, 1), (1000, 1e-9, 1), (7, 1.0, 7), (3, 0.5, 2), (1, 0.01, 1), (100, 0.1, 10)],
)
def test_n_kept_units_rounds_up_to_at_least_one(n_units, fraction, expected):
    assert n_kept_units(n_units, fraction) == expected == max(1, math.ceil(fraction * n_units))


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5, float("nan")])
def test_n_kept_units_rejects_bad_fractions(fraction):
    with pytest.raises(ValueError, match="unit_fraction must be in"):
        n_kept_units(10, fraction)


def test_obfuscate_subsamples_the_same_units_for_every_example():
    acts = np.random.default_rng(6).normal(size=(6, 4, 5))
    flat = acts.reshape(6, 20)
    out = obfuscate_units(acts, unit_fraction=0.3, seed=11)
    kept = np.random.RandomState(11).permutation(20)[:6]
    np.testing.assert_array_equal(out, flat[:, kept])
    # each output column is one original unit, identical for all examples
    for column in range(out.shape[1]):
        matches = [u for u in range(20) if np.array_equal(out[:, column], flat[:, u])]
        assert matches == [kept[column]]


def test_obfuscate_adds_noise_then_subsamples():
    acts = np.random.default_rng(7).normal(size=(5, 12))
    out = obfuscate_units(acts, unit_fraction=0.5, noise_std=0.3, seed=2)
    noisy = acts + np.random.default_rng(2).normal(0.0, 0.3, size=acts.shape)
    kept = np.random.RandomState(2).permutation(12)[:6]
    np.testing.assert_allclose(out, noisy[:, kept], rtol=0, atol=0)


def test_obfuscate_noise_has_the_requested_std():
    x = np.zeros((200, 500))
    out = obfuscate_units(x, noise_std=2.0, seed=0)
    assert out.shape == x.shape
    assert abs(out.mean()) < 0.02
    assert out.std() == pytest.approx(2.0, rel=0.01)


def test_obfuscate_seeds_and_identity():
    x = np.random.default_rng(8).normal(size=(4, 30))
    np.testing.assert_array_equal(obfuscate_units(x), x)
    a = obfuscate_units(x, 0.2, 0.1, seed=5)
    np.testing.assert_array_equal(a, obfuscate_units(x, 0.2, 0.1, seed=5))
    assert not np.array_equal(a, obfuscate_units(x, 0.2, 0.1, seed=6))
    assert obfuscate_units(x, 1e-6, seed=1).shape == (4, 1)
    with pytest.raises(ValueError, match="noise_std must be >= 0"):
        obfuscate_units(x, noise_std=-1.0)


def test_obfuscate_weight_kernel_without_batch_axis():
    kernel = np.random.default_rng(9).normal(size=(3, 4, 5))
    out = obfuscate_units(kernel, unit_fraction=0.1, seed=3, batch_axis=False)
    kept = np.random.RandomState(3).permutation(60)[:6]
    assert out.shape == (1, 6)
    np.testing.assert_array_equal(out[0], kernel.ravel()[kept])


def test_obfuscation_then_function_then_statistic():
    acts = np.random.default_rng(10).normal(size=(8, 50))
    fraction, noise, seed = 0.4, 0.5, 4
    got = activation_observables(obfuscate_units(acts, fraction, noise, seed))
    noisy = acts + np.random.default_rng(seed).normal(0.0, noise, size=acts.shape)
    kept = np.random.RandomState(seed).permutation(50)[:20]
    expected = np.mean(np.abs(noisy[:, kept]).mean(axis=1))
    assert got["actabs_mean"] == pytest.approx(expected, rel=1e-12)
    # the function is applied after the noise: abs first, noise second differs
    swapped = np.abs(acts) + np.random.default_rng(seed).normal(0.0, noise, size=acts.shape)
    assert got["actabs_mean"] != pytest.approx(np.mean(swapped[:, kept]), rel=1e-3)
