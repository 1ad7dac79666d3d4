"""Rank and linear correlation: hand-checked values, ties, extremes and bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats  # an independent reference (in the test extras: never skipped)

from modalens.validation.correlation import (
    average_ranks,
    kendall,
    kendall_w,
    pairs_alike,
    pearson,
    shares,
    spearman,
)


def test_perfect_agreement_is_one() -> None:
    deviation = [0.40, 0.30, 0.20, 0.10]
    influence = [2.0, 1.5, 0.7, 0.1]  # same order, other scale and spacing
    assert spearman(deviation, influence) == pytest.approx(1.0)
    assert kendall(deviation, influence) == pytest.approx(1.0)
    assert pearson(deviation, [4 * d + 1 for d in deviation]) == pytest.approx(1.0)


def test_reversed_order_is_minus_one() -> None:
    deviation = [0.40, 0.30, 0.20, 0.10]
    influence = [0.1, 0.7, 1.5, 2.0]
    assert spearman(deviation, influence) == pytest.approx(-1.0)
    assert kendall(deviation, influence) == pytest.approx(-1.0)
    assert pearson(deviation, [-3 * d for d in deviation]) == pytest.approx(-1.0)


def test_ties_get_average_ranks() -> None:
    np.testing.assert_allclose(average_ranks([10, 20, 20, 30]), [1, 2.5, 2.5, 4])
    np.testing.assert_allclose(average_ranks([5, 5, 5]), [2, 2, 2])
    np.testing.assert_allclose(average_ranks([[3, 1, 2], [1, 1, 0]]), [[3, 1, 2], [2.5, 2.5, 1]])


def test_tied_values_by_hand() -> None:
    x, y = [1, 2, 2, 3], [1, 2, 3, 4]
    # ranks of x: 1, 2.5, 2.5, 4 -> r = 4.5 / sqrt(4.5 * 5)
    assert spearman(x, y) == pytest.approx(4.5 / math.sqrt(22.5))
    # 5 concordant pairs, 0 discordant, one pair tied in x: tau_b = 5 / sqrt(5 * 6)
    assert kendall(x, y) == pytest.approx(5 / math.sqrt(30))


def test_pearson_by_hand() -> None:
    # deviations from the mean: (-1, 0, 1) and (-1, 1, 0): r = 1 / sqrt(2 * 2) = 0.5
    x, y = np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0])
    assert pearson(x, y) == pytest.approx(0.5)


def test_undefined_correlations_are_nan() -> None:
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert math.isnan(kendall([1, 1, 1], [1, 2, 3]))
    assert math.isnan(pearson([1, 2, 3], [4, 4, 4]))
    assert math.isnan(spearman([1, float("nan"), 3], [1, 2, 3]))
    assert math.isnan(kendall([1.0], [2.0]))


def test_random_vectors_stay_in_bounds_and_agree_with_batches() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, size=(500, 5)).astype(float)  # many ties
    y = rng.normal(size=(500, 5))
    for fn in (spearman, kendall, pearson):
        batch = fn(x, y)
        assert batch.shape == (500,)
        finite = batch[np.isfinite(batch)]
        assert finite.size > 400
        assert finite.min() >= -1.0 and finite.max() <= 1.0
        one_by_one = np.array([fn(a, b) for a, b in zip(x, y, strict=True)])
        np.testing.assert_allclose(batch, one_by_one, equal_nan=True)
        np.testing.assert_allclose(fn(y, x), batch, equal_nan=True)  # symmetric


def test_rank_statistics_ignore_monotone_transforms() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=12), rng.normal(size=12)
    assert spearman(np.exp(x), y**3) == pytest.approx(spearman(x, y))
    assert kendall(np.exp(x), y**3) == pytest.approx(kendall(x, y))


def test_against_scipy() -> None:
    rng = np.random.default_rng(2)
    for _ in range(20):
        x = rng.integers(0, 5, size=8).astype(float)
        y = rng.integers(0, 5, size=8).astype(float)
        if len(set(x)) < 2 or len(set(y)) < 2:
            continue
        assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
        assert kendall(x, y) == pytest.approx(stats.kendalltau(x, y).statistic)
        assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic)


def test_shares_sum_to_one() -> None:
    np.testing.assert_allclose(shares([1.0, 3.0]), [0.25, 0.75])
    np.testing.assert_allclose(shares([[0.0, 0.0], [2.0, 2.0]]), [[0.0, 0.0], [0.5, 0.5]])
    assert shares([0.2, 0.5, 0.3]).sum() == pytest.approx(1.0)


def test_shares_keep_the_sign() -> None:
    np.testing.assert_allclose(shares([3.0, -1.0]), [0.75, -0.25])


def test_pairs_alike_by_hand() -> None:
    assert pairs_alike([1, 2, 3, 4], [10, 20, 30, 40]) == 6
    assert pairs_alike([1, 2, 3, 4], [10, 30, 20, 40]) == 5  # one swap
    assert pairs_alike([1, 2, 3, 4], [40, 30, 20, 10]) == 0
    assert pairs_alike([1, 1, 3], [1, 2, 3]) == 2  # the tied pair counts for neither
    assert pairs_alike([1, 2, math.nan], [1, 2, 3]) == 0
    np.testing.assert_array_equal(pairs_alike([[1, 2, 3], [3, 2, 1]], [[1, 2, 3]] * 2), [3, 0])


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="same shape"):
        spearman([1, 2, 3], [1, 2])


# ---------------------------------------------------------------------- Kendall's W
def test_kendall_w_is_one_for_identical_rankings() -> None:
    row = [0.4, 0.3, 0.2, 0.1]
    assert kendall_w([row, row, row]) == pytest.approx(1.0)
    # W only needs the same order, not the same values
    assert kendall_w([row, [40, 30, 20, 10], [9, 8, 1, 0]]) == pytest.approx(1.0)


def test_kendall_w_by_hand() -> None:
    # rankings (1,2,3), (1,3,2), (2,1,3): rank sums 4, 6, 8, S = 8, W = 12*8 / (9 * 24)
    assert kendall_w([[1, 2, 3], [1, 3, 2], [2, 1, 3]]) == pytest.approx(96 / 216)
    # two opposite raters: every rank sum is 4, W = 0
    assert kendall_w([[1, 2, 3], [3, 2, 1]]) == pytest.approx(0.0)
    # ties: ranks (1,2,3) and (1.5,1.5,3): S = 6.5, T = 2^3 - 2 = 6, W = 78 / (4*24 - 2*6)
    assert kendall_w([[1, 2, 3], [1, 1, 3]]) == pytest.approx(78 / 84)


def test_kendall_w_matches_mean_spearman_and_stays_in_bounds() -> None:
    rng = np.random.default_rng(3)
    for m, n in [(2, 4), (4, 4), (6, 5), (3, 7)]:
        r = rng.normal(size=(m, n))
        w = kendall_w(r)
        assert 0.0 <= w <= 1.0
        rhos = [spearman(r[i], r[j]) for i in range(m) for j in range(i + 1, m)]
        assert w == pytest.approx(((m - 1) * np.mean(rhos) + 1) / m)  # no ties: exact relation


def test_kendall_w_undefined_cases_are_nan() -> None:
    assert math.isnan(kendall_w([[1, 2, 3]]))  # one rater
    assert math.isnan(kendall_w([[1], [2]]))  # one object
    assert math.isnan(kendall_w([[1, 1], [2, 2]]))  # everything tied
    assert kendall_w([[1, 2, 3], [np.nan, 1, 2], [1, 2, 3]]) == pytest.approx(1.0)  # NaN row out
