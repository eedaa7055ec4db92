import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lrid_analysis import stats as St

D = [0.01, 0.03, -0.02, 0.04, 0.02]


def test_corrected_ttest_by_hand():
    # mean 0.016; squared deviations sum to 0.00212 -> var (ddof=1) 0.00053;
    # factor 1/5 + 25/75 = 0.5333...; se = sqrt(0.00053 * 0.5333...) = 0.0168127
    result = St.corrected_ttest(D, n_train=75, n_test=25)
    assert result.mean == pytest.approx(0.016)
    assert result.se == pytest.approx(np.sqrt(0.00053 * (0.2 + 1 / 3)))
    assert result.statistic == pytest.approx(0.016 / 0.01681269, rel=1e-6)
    assert result.df == 4
    assert result.pvalue == pytest.approx(2 * stats.t.sf(result.statistic, 4))
    greater = St.corrected_ttest(D, 75, 25, alternative="greater")
    less = St.corrected_ttest(D, 75, 25, alternative="less")
    assert greater.pvalue == pytest.approx(result.pvalue / 2) and less.pvalue == pytest.approx(1 - result.pvalue / 2)
    with pytest.raises(ValueError, match="alternative"):
        St.corrected_ttest(D, 75, 25, alternative="both")


def test_uncorrected_limit_equals_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.8, 0.02, size=10), rng.normal(0.78, 0.02, size=10)
    ours = St.corrected_ttest_rel(a, b, n_train=100, n_test=0)
    ref = stats.ttest_rel(a, b)
    assert ours.statistic == pytest.approx(ref.statistic) and ours.pvalue == pytest.approx(ref.pvalue)
    one = St.corrected_ttest(a, n_train=1e12, n_test=1, popmean=0.79)
    ref1 = stats.ttest_1samp(a, 0.79)
    assert one.statistic == pytest.approx(ref1.statistic, rel=1e-6)
    assert one.pvalue == pytest.approx(ref1.pvalue, rel=1e-5)
    # the correction shrinks t by sqrt((1/J) / (1/J + n_test/n_train))
    corrected = St.corrected_ttest_rel(a, b, n_train=75, n_test=25)
    assert corrected.statistic == pytest.approx(ref.statistic * np.sqrt(0.1 / (0.1 + 1 / 3)))
    assert corrected.pvalue > ref.pvalue


def test_corrected_confidence_interval():
    scores = np.array([0.91, 0.93, 0.90, 0.94, 0.92, 0.95])
    mean, low, high = St.corrected_confidence_interval(scores, n_train=1, n_test=0, confidence=0.9)
    ref = stats.t.interval(0.9, 5, loc=scores.mean(), scale=stats.sem(scores))
    assert mean == pytest.approx(scores.mean()) and (low, high) == pytest.approx(ref)
    _, low_c, high_c = St.corrected_confidence_interval(scores, n_train=3, n_test=1, confidence=0.9)
    widen = np.sqrt((1 / 6 + 1 / 3) / (1 / 6))
    assert high_c - low_c == pytest.approx((high - low) * widen)
    with pytest.raises(ValueError, match="at least 2 splits"):
        St.corrected_confidence_interval([0.9], 3, 1)
    with pytest.raises(ValueError, match="n_train"):
        St.corrected_ttest(D, 0, 1)


def test_zero_variance_gives_the_exact_sign_flip_p_never_a_t():
    # issue 10 bug 4: equal differences gave t = +-inf and p = 0
    for J in (2, 3, 10, 30):
        result = St.corrected_ttest([0.5] * J, 3, 1)
        assert result.method == "sign-flip" and np.isnan(result.statistic) and result.se == 0
        assert result.pvalue == 2 / 2**J  # only the all-plus and all-minus patterns reach |sum| = J / 2
        assert St.corrected_ttest([0.5] * J, 3, 1, alternative="greater").pvalue == 1 / 2**J
        assert St.corrected_ttest([0.5] * J, 3, 1, alternative="less").pvalue == 1.0
    assert St.corrected_ttest([0.0, 0.0, 0.0], 3, 1).pvalue == 1.0
    assert St.corrected_ttest([0.9] * 4, 3, 1, popmean=0.9).pvalue == 1.0
    with pytest.warns(RuntimeWarning, match="zero variance"):
        forced = St.corrected_ttest([0.5] * 8, 3, 1, method="t")
    assert np.isnan(forced.statistic) and np.isnan(forced.pvalue)


def test_two_splits_with_equal_differences_are_not_significant():
    # `separability --splits 2` printed p = 2.6e-15 (t = -2.4e14): the two differences were equal
    table = pd.DataFrame({"classifier": ["a", "a", "b", "b"], "split": [0, 1, 0, 1],
                          "test_accuracy": [0.7, 0.8, 0.75, 0.85], "n_train": 300, "n_test": 100})
    row = St.compare_conditions(table, "classifier").iloc[0]
    assert row["p"] == 0.5 and row["test"] == "sign-flip" and np.isnan(row["t"]) and not row["reject"]


def test_sign_flip_test_by_hand():
    # sums of +-1 +-2 +-3: 6, 0, 2, -4, 4, -2, 0, -6; two of eight reach |6|, one reaches 6
    assert St.sign_flip_test([1.0, 2.0, 3.0]) == 0.25
    assert St.sign_flip_test([1.0, 2.0, 3.0], alternative="greater") == 0.125
    assert St.sign_flip_test([1.0, 2.0, 3.0], alternative="less") == 1.0
    # around popmean 2: centred (-1, 0, 1) has sum 0, which every pattern matches in absolute value
    assert St.sign_flip_test([1.0, 2.0, 3.0], popmean=2.0) == 1.0
    # (0.1, 0.2, -0.3) sums to 0 up to rounding: ties count, p is 1 not 0.75
    assert St.sign_flip_test([0.1, 0.2, -0.3]) == 1.0
    with pytest.raises(ValueError, match="at most 2"):
        St.sign_flip_test(np.arange(25.0))
    with pytest.raises(ValueError, match="alternative"):
        St.sign_flip_test([1.0, 2.0], alternative="both")


@pytest.mark.parametrize("J", [2, 4, 7])
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_sign_flip_test_equals_scipy_exact_paired_permutation_test(J, alternative):
    rng = np.random.default_rng(J)
    a, b = rng.normal(0.8, 0.05, J), rng.normal(0.78, 0.05, J)
    ref = stats.permutation_test((a, b), lambda x, y: np.mean(x - y), permutation_type="samples",
                                 n_resamples=np.inf, alternative=alternative).pvalue
    assert St.sign_flip_test(a - b, alternative=alternative) == pytest.approx(ref, abs=1e-12)


def test_few_splits_use_the_sign_flip_test_and_enough_splits_the_t_test():
    few = St.corrected_ttest(D[:4], 75, 25)
    assert few.method == "sign-flip" and few.pvalue == St.sign_flip_test(D[:4])
    assert few.pvalue >= 2 / 2**4 and np.isfinite(few.statistic)
    assert St.corrected_ttest(D[:4], 75, 25, min_splits=3).method == "t"
    assert St.corrected_ttest(D, 75, 25, method="sign-flip").pvalue == St.sign_flip_test(D)
    with pytest.raises(ValueError, match="method"):
        St.corrected_ttest(D, 75, 25, method="z")


def test_mean_sem():
    values = np.array([[1.0, 2.0], [3.0, 5.0], [4.0, 9.0]])
    mean, sem = St.mean_sem(values)
    np.testing.assert_allclose(mean, [8 / 3, 16 / 3])
    np.testing.assert_allclose(sem, stats.sem(values, axis=0))
    assert np.isnan(St.mean_sem([0.5])[1])


def test_holm_hand_example():
    # sorted p: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06
    reject, adjusted = St.holm([0.01, 0.04, 0.03, 0.005], alpha=0.05)
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_array_equal(reject, [True, False, False, True])
    reject, adjusted = St.holm([0.01, np.nan, 0.02])  # NaN stays out of the family
    np.testing.assert_allclose(adjusted, [0.02, np.nan, 0.02])
    np.testing.assert_array_equal(reject, [True, False, True])


@pytest.fixture
def table():
    rng = np.random.default_rng(4)
    rows = []
    for name, level in (("rf", 0.9), ("svm", 0.8), ("conv1d", 0.82)):
        for split in range(8):
            rows.append({"classifier": name, "split": split, "test_accuracy": level + rng.normal(0, 0.01),
                         "n_train": 300, "n_test": 100})
    return pd.DataFrame(rows)


def test_compare_conditions_all_pairs(table):
    out = St.compare_conditions(table, "classifier")
    assert list(zip(out["condition_a"], out["condition_b"])) == [("rf", "svm"), ("rf", "conv1d"), ("svm", "conv1d")]
    scores = table.pivot(index="split", columns="classifier", values="test_accuracy")
    for _, row in out.iterrows():
        d = scores[row["condition_a"]] - scores[row["condition_b"]]
        ref = St.corrected_ttest(d.to_numpy(), 300, 100)
        assert row["t"] == pytest.approx(ref.statistic) and row["p"] == pytest.approx(ref.pvalue)
        assert row["difference"] == pytest.approx(d.mean())
        assert row["mean_a"] == pytest.approx(scores[row["condition_a"]].mean())
        assert row["n_splits"] == 8 and row["df"] == 7
    np.testing.assert_allclose(out["p_holm"], St.holm(out["p"])[1])
    assert out.set_index(["condition_a", "condition_b"]).loc[("rf", "svm"), "reject"]


def test_compare_conditions_reference_and_errors(table):
    out = St.compare_conditions(table, "classifier", reference="rf", n_train=600, n_test=200)
    assert list(out["condition_a"]) == ["svm", "conv1d"] and set(out["condition_b"]) == {"rf"}
    d = (table.query("classifier == 'svm'")["test_accuracy"].to_numpy()
         - table.query("classifier == 'rf'")["test_accuracy"].to_numpy())
    assert out.loc[0, "t"] == pytest.approx(St.corrected_ttest(d, 600, 200).statistic)
    # pairs use the splits both conditions have
    partial = table.drop(index=table.query("classifier == 'svm' and split >= 5").index)
    assert St.compare_conditions(partial, "classifier", reference="rf").loc[0, "n_splits"] == 5
    with pytest.raises(ValueError, match="more than one row"):
        St.compare_conditions(pd.concat([table, table.iloc[:1]]), "classifier")
    with pytest.raises(ValueError, match="n_train"):
        St.compare_conditions(table.drop(columns=["n_train"]), "classifier")
    with pytest.raises(ValueError, match="reference"):
        St.compare_conditions(table, "classifier", reference="xgb")
    with pytest.raises(ValueError, match="no column"):
        St.compare_conditions(table, "model")
