"""Dataset-level summaries, the text table and the figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modalens.attribution.aggregation import (
    bootstrap_ci,
    format_summary,
    per_sample,
    summarize_scores,
)
from modalens.attribution.figures import (
    influence_bar_chart,
    occlusion_map_preview,
    strategy_comparison,
)


def scores() -> pd.DataFrame:
    rows = []
    vals = {"s2": [4.0, 6.0, 5.0], "s1": [1.0, 3.0, 2.0], "ALL": [9.0, 9.0, 9.0]}
    for strategy in ("zeros", "gaussian"):
        for g, v in vals.items():
            for i, value in enumerate(v):
                draws = (0, 1) if strategy == "gaussian" else (0,)
                for d in draws:
                    rows.append(
                        {
                            "sample_id": str(i),
                            "window": f"0,{i},8,8",
                            "method": "occlusion",
                            "level": "embedding",
                            "distance": "euclidean",
                            "strategy": strategy,
                            "group": g,
                            "draw": d,
                            "value": value + (d - 0.5 if len(draws) > 1 else 0),
                        }
                    )
    return pd.DataFrame(rows)


def test_summary_statistics_share_rank() -> None:
    s = summarize_scores(scores(), seed=0)
    z = s[s["strategy"] == "zeros"].set_index("group")
    assert z.loc["s2", "mean"] == pytest.approx(5.0)
    assert z.loc["s2", "median"] == pytest.approx(5.0)
    assert z.loc["s2", "std"] == pytest.approx(1.0)
    assert z.loc["s2", "n"] == 3
    assert z.loc["s2", "share"] == pytest.approx(5 / 7)
    assert z.loc["s1", "share"] == pytest.approx(2 / 7)
    assert (z.loc["s2", "rank"], z.loc["s1", "rank"]) == (1, 2)
    assert pd.isna(z.loc["ALL", "rank"]) and np.isnan(z.loc["ALL", "share"])
    assert z.loc["s2", "ci_low"] <= 5.0 <= z.loc["s2", "ci_high"]
    # draws are averaged per sample first: gaussian equals zeros here
    g = s[s["strategy"] == "gaussian"].set_index("group")
    assert g.loc["s2", "mean"] == pytest.approx(5.0) and g.loc["s2", "n"] == 3
    pd.testing.assert_frame_equal(s, summarize_scores(scores(), seed=0))
    assert len(per_sample(scores())) == 2 * 3 * 3


def test_bootstrap_seeded() -> None:
    v = np.random.default_rng(0).normal(size=50)
    a, b = bootstrap_ci(v, seed=1), bootstrap_ci(v, seed=1)
    assert a == b and a[0] < v.mean() < a[1]
    assert bootstrap_ci(v, seed=2) != a
    # one sample says nothing about the spread: no (zero-width) interval
    assert all(np.isnan(bootstrap_ci(np.array([3.0]))))
    assert all(np.isnan(bootstrap_ci(np.array([np.nan, 3.0]))))
    # the same computation directly in numpy with the same seed
    idx = np.random.default_rng(1).integers(0, v.size, size=(1000, v.size))
    ref = np.quantile(v[idx].mean(axis=1), [0.025, 0.975])
    np.testing.assert_allclose(a, ref, rtol=1e-12)


def test_single_sample_summary_prints_without_interval() -> None:
    one = scores()
    one = one[one["sample_id"] == "0"]
    s = summarize_scores(one)
    assert s["ci_low"].isna().all() and s["ci_high"].isna().all()
    assert (s["n"] == 1).all()
    text = format_summary(s)
    assert "s2" in text and " - " in text


def test_format_and_figures(tmp_path) -> None:
    s = summarize_scores(scores())
    text = format_summary(s)
    assert "strategy=zeros" in text and "s2" in text and "71.4%" in text
    for fn, name in ((influence_bar_chart, "bars.png"), (strategy_comparison, "cmp.png")):
        p = fn(s, tmp_path / name)
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    arr = np.random.default_rng(0).random((20, 30)).astype(np.float32)
    arr[0, 0] = np.nan
    p = occlusion_map_preview(arr, tmp_path / "map.png", title="t")
    assert p.exists()
    assert not list(tmp_path.glob(".*tmp*"))


def test_signed_shares_are_over_magnitudes_and_labelled() -> None:
    # a loss-level block: occluding s1 lowers the loss (negative mean)
    df = scores()
    df = df[df["strategy"] == "zeros"].copy()
    df["level"] = "loss"
    df.loc[df["group"] == "s2", "value"] = 1.3
    df.loc[df["group"] == "s1", "value"] = -0.3
    s = summarize_scores(df, n_boot=0).set_index("group")
    assert s.loc["s2", "share"] == pytest.approx(1.3 / 1.6)
    assert s.loc["s1", "share"] == pytest.approx(-0.3 / 1.6)
    shares = s.loc[["s2", "s1"], "share"]
    assert shares.abs().sum() == pytest.approx(1.0) and shares.abs().max() <= 1.0
    text = format_summary(s.reset_index())
    assert "share*" in text and "81.2%" in text and ("-18.7%" in text or "-18.8%" in text)
    assert "130" not in text and "sum of |mean|" in text and "negative:" in text
    # non-negative influences: shares sum to 1 and no negative footnote
    plain = format_summary(summarize_scores(scores(), n_boot=0))
    assert "sum of |mean|" in plain and "negative:" not in plain
