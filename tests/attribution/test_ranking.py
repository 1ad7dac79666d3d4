"""Rankings with honest uncertainty: paired bootstrap probabilities, tiers, the order line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modalens.attribution.aggregation import (
    PAIRWISE_COLUMNS,
    SUMMARY_COLUMNS,
    block_order,
    format_summary,
    pairwise,
    summarize_scores,
)
from modalens.attribution.ranking import Pairwise, format_order, pairwise_probabilities, tiers


def long_form(values: dict[str, np.ndarray], **block: str) -> pd.DataFrame:
    """Long-form scores of one block from per-group, per-sample values (plus an ALL row)."""
    n = len(next(iter(values.values())))
    rows = []
    for g, v in {**values, "ALL": np.full(n, 100.0)}.items():
        for i in range(n):
            rows.append(
                {
                    "sample_id": f"s{i}",
                    "method": "occlusion",
                    "level": block.get("level", "output"),
                    "distance": "euclidean",
                    "strategy": block.get("strategy", "mean"),
                    "group": g,
                    "draw": 0,
                    "value": float(v[i]),
                }
            )
    return pd.DataFrame(rows)


def planted(n: int = 30, seed: int = 0) -> dict[str, np.ndarray]:
    """a far above a tied middle (b, its exact copy c, and d overlapping them), e far below."""
    rng = np.random.default_rng(seed)
    b = 5 + rng.normal(size=n)
    return {
        "a": 10 + rng.normal(size=n),
        "b": b,
        "c": b.copy(),
        "d": 5.05 + rng.normal(size=n),
        "e": rng.normal(size=n),
    }


def test_ties_and_separations_on_a_hand_made_case() -> None:
    vals = planted()
    x = np.column_stack(list(vals.values()))
    res = pairwise_probabilities(x, n_boot=1000, seed=0)
    names = list(vals)
    p = pd.DataFrame(res.p, index=names, columns=names)
    assert p.loc["b", "c"] == 0.5 and p.loc["c", "b"] == 0.5  # identical scores: a tie
    assert p.loc["a", "b"] == 1.0 and p.loc["b", "e"] == 1.0  # 5 sd apart
    assert 0.05 < p.loc["d", "b"] < 0.95  # overlapping: no separation either way
    assert (res.n[~np.eye(5, dtype=bool)] == 30).all()
    t = tiers(x.mean(axis=0), res)
    assert dict(zip(names, t, strict=True)) == {"a": 1, "b": 2, "c": 2, "d": 2, "e": 3}
    summary = summarize_scores(long_form(vals)).set_index("group")
    assert summary.loc[["a", "b", "c", "d", "e"], "tier"].tolist() == [1, 2, 2, 2, 3]
    order = block_order(summary.reset_index())
    assert order is not None and order.startswith("a > ") and order.count(" ≈ ") == 2
    assert order.split(" (")[0].endswith(" > e")
    assert order.endswith("(P >= 0.95 between tiers; 30 samples)")


def test_probabilities_are_symmetric_and_match_a_direct_bootstrap() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(25, 4)) + np.array([0.0, 0.2, 0.4, 1.0])
    res = pairwise_probabilities(x, n_boot=500, seed=7)
    off = ~np.eye(4, dtype=bool)
    np.testing.assert_allclose((res.p + res.p.T)[off], 1.0, atol=1e-12)
    assert np.isnan(np.diag(res.p)).all()
    # the same resamples drawn by hand: one row draw for every group (paired)
    idx = np.random.default_rng(7).integers(0, 25, size=(500, 25))
    means = x[idx].mean(axis=1)
    ref = (means[:, :, None] > means[:, None, :]).mean(axis=0)
    np.testing.assert_allclose(res.p[off], ref[off], atol=2 / 500)
    np.testing.assert_allclose(res.mean_diff[0, 3], x[:, 0].mean() - x[:, 3].mean())
    # the table gives both directions of a pair, summing to 1
    vals = {f"g{j}": x[:, j] for j in range(4)}
    table = pairwise(long_form(vals), n_boot=500, seed=7)
    assert list(table.columns) == PAIRWISE_COLUMNS and len(table) == 4 * 3
    both = table.merge(table, left_on=["group_a", "group_b"], right_on=["group_b", "group_a"])
    np.testing.assert_allclose(both["p_greater_x"] + both["p_greater_y"], 1.0, atol=1e-12)
    assert "ALL" not in set(table["group_a"]) | set(table["group_b"])


def test_seeded_and_deterministic() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(15, 3)) + np.array([0.0, 0.3, 0.6])
    first = pairwise_probabilities(x, n_boot=400, seed=5)
    again = pairwise_probabilities(x, n_boot=400, seed=5)
    np.testing.assert_array_equal(first.p, again.p)
    other = pairwise_probabilities(x, n_boot=400, seed=6)
    assert not np.array_equal(first.p[~np.isnan(first.p)], other.p[~np.isnan(other.p)])
    scores = long_form({f"g{j}": x[:, j] for j in range(3)})
    pd.testing.assert_frame_equal(pairwise(scores, seed=2), pairwise(scores, seed=2))
    summary = summarize_scores(scores, seed=2)
    pd.testing.assert_frame_equal(summary, summarize_scores(scores, seed=2))


def test_missing_scores_are_paired_over_samples_scored_for_both() -> None:
    x = np.column_stack([np.arange(12.0) + 10, np.arange(12.0)])
    x[:4, 1] = np.nan
    res = pairwise_probabilities(x, n_boot=200, seed=0)
    assert res.n[0, 1] == 8 and res.p[0, 1] == 1.0
    assert res.mean_diff[0, 1] == pytest.approx(10.0)
    alone = pairwise_probabilities(x[4:5], n_boot=200, seed=0)  # one sample: no probability
    assert np.isnan(alone.p[0, 1]) and alone.n[0, 1] == 1


def test_a_cut_needs_every_group_above_to_beat_every_group_below() -> None:
    # a beats c, but b (mean in between) is separated from neither: no cut anywhere
    p = np.array([[np.nan, 0.90, 0.99], [0.10, np.nan, 0.90], [0.01, 0.10, np.nan]])
    n = np.full((3, 3), 30)
    res = Pairwise(p, n, np.zeros((3, 3)))
    assert tiers([3.0, 2.0, 1.0], res).tolist() == [1, 1, 1]
    # b beats c too: a and b above the cut, c below
    p2 = p.copy()
    p2[1, 2], p2[2, 1] = 0.97, 0.03
    assert tiers([3.0, 2.0, 1.0], Pairwise(p2, n, p * 0)).tolist() == [1, 1, 2]
    # the order follows the means, whatever the column order; NaN means get no tier
    assert tiers([1.0, 2.0, 3.0], Pairwise(p2[::-1, ::-1], n, p * 0)).tolist() == [2, 1, 1]
    assert np.isnan(tiers([3.0, np.nan, 1.0], Pairwise(p2, n, p * 0))[1])
    # separated, but from fewer samples than a finding needs: one tier
    assert tiers([3.0, 2.0, 1.0], Pairwise(p2, np.full((3, 3), 9), p * 0)).tolist() == [1] * 3


def test_fewer_than_ten_samples_separate_nothing() -> None:
    far = {"a": np.arange(9.0) + 100, "b": np.arange(9.0)}
    s = summarize_scores(long_form(far))
    ranked = s[s["group"] != "ALL"]
    assert ranked["rank"].tolist() == [1, 2] and ranked["tier"].tolist() == [1, 1]
    assert block_order(s) == "a ≈ b (only 9 samples: too few for a finding, at least 10 are needed)"
    ten = {"a": np.arange(10.0) + 100, "b": np.arange(10.0)}
    s10 = summarize_scores(long_form(ten))
    assert s10[s10["group"] != "ALL"]["tier"].tolist() == [1, 2]
    assert block_order(s10) == (
        "a > b (P >= 0.95 between tiers; only 10 samples: read with care, intervals from fewer "
        "than 20 samples are rough)"
    )


def test_tier_column_in_the_summary_and_its_text() -> None:
    vals = planted(n=24)
    s = summarize_scores(long_form(vals))
    assert SUMMARY_COLUMNS[-2:] == ["rank", "tier"] and list(s.columns) == SUMMARY_COLUMNS
    assert str(s["tier"].dtype) == "Int64"
    assert pd.isna(s.loc[s["group"] == "ALL", "tier"]).all()
    # the strict rank stays beside the tier
    assert (
        s.loc[s["group"] == "a", "rank"].item() == 1
        and s.loc[s["group"] == "e", "rank"].item() == 5
    )
    text = format_summary(s)
    assert "  tier" in text
    assert "\norder: a > " in text and "> e (P >= 0.95 between tiers; 24 samples)" in text
    # without the bootstrap no tiers, and no order line
    plain = summarize_scores(long_form(vals), n_boot=0)
    assert plain["tier"].isna().all() and "order:" not in format_summary(plain)
    # a summary of an earlier version (no tier column) still prints, without an order line
    old = format_summary(s.drop(columns="tier"))
    assert "order:" not in old and "tier" not in old


def test_format_order() -> None:
    assert format_order(["esa_wc", "s1", "viirs", "s2"], [1, 2, 2, 3]) == "esa_wc > s1 ≈ viirs > s2"
    assert format_order(["x"], [1]) == "x"
