"""Property-based tests (hypothesis) of occlusion and aggregation.

Occluding a group changes only that group's channels (besides the ALL reference, which
occludes every group), every group is occluded, bootstrap intervals contain the mean and
shares of non-negative influences sum to 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modalens.attribution import attribute
from modalens.attribution.aggregation import bootstrap_ci, summarize_scores


@st.composite
def grouping(draw: st.DrawFn) -> tuple[int, dict[str, list[int]]]:
    """A channel count and a partition of its channels into named groups (any order)."""
    n = draw(st.integers(2, 6))
    labels = draw(st.lists(st.integers(0, n - 1), min_size=n, max_size=n))
    groups: dict[str, list[int]] = {}
    for channel, g in enumerate(labels):
        groups.setdefault(f"g{g}", []).append(channel)
    return n, groups


class Flat(torch.nn.Module):
    """A model whose output is its input (the embedding hook records what it sees)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grouping(), st.sampled_from(["zeros", "ones", "uniform", "gaussian"]), st.integers(0, 99))
def test_occluding_a_group_changes_only_its_channels(
    layout: tuple[int, dict[str, list[int]]], strategy: str, seed: int
) -> None:
    n, groups = layout
    x = torch.randn(1, n, 4, 4, generator=torch.Generator().manual_seed(seed)) + 5.0
    seen: list[torch.Tensor] = []

    def record(model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        seen.append(inputs.detach().clone())
        return inputs.flatten(1)

    attribute(
        Flat(),
        [x],
        groups,
        strategies=strategy,
        levels="embedding",
        embedding=record,
        optimize=False,
    )
    occluded = set()
    for chunk in seen:
        for row in chunk:
            changed = {c for c in range(n) if not torch.equal(row[c], x[0, c])}
            if changed == set(range(n)) and len(groups) > 1:
                continue  # the ALL reference: every group occluded at once
            owner = [g for g, chs in groups.items() if changed and changed <= set(chs)]
            assert not changed or owner, f"channels {changed} span several groups {groups}"
            occluded.update(owner)
    assert occluded == set(groups)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=40), st.integers(0, 9))
def test_bootstrap_interval_contains_the_mean(values: list[float], seed: int) -> None:
    v = np.asarray(values)
    lo, hi = bootstrap_ci(v, n_boot=400, seed=seed)
    tol = 1e-9 * max(1.0, float(np.abs(v).max()))
    assert lo - tol <= v.mean() <= hi + tol


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(0, 1e3), min_size=6, max_size=6),
    st.lists(st.floats(0, 1e3), min_size=6, max_size=6),
)
def test_shares_of_non_negative_influence_sum_to_one(a: list[float], b: list[float]) -> None:
    rows = []
    for strategy, values in (("zeros", a), ("mean", b)):
        for i, value in enumerate(values):
            rows.append(
                {
                    "sample_id": str(i // 3),
                    "window": "",
                    "method": "occlusion",
                    "level": "output",
                    "distance": "euclidean",
                    "strategy": strategy,
                    "group": f"m{i % 3}",
                    "draw": 0,
                    "value": value,
                }
            )
    summary = summarize_scores(pd.DataFrame(rows), n_boot=0)
    for _, block in summary.groupby("strategy"):
        total = block["share"].sum()
        if block["mean"].sum() > 0:
            assert abs(total - 1.0) < 1e-9
            assert (block["share"] >= 0).all()
            assert sorted(block["rank"]) == sorted(
                block["mean"].rank(ascending=False, method="min")
            )
