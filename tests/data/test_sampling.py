"""The seeded epoch sampler split across ranks (hypothesis): W processes draw what one draws."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modalens.data.sampling import EpochSampler, RankShard

FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def samplers(draw: st.DrawFn) -> dict:
    n = draw(st.integers(1, 40))
    weighted = draw(st.booleans())
    weights = None
    if weighted:
        weights = torch.tensor(draw(st.lists(st.floats(0.01, 5.0), min_size=n, max_size=n)))
    return {
        "n": n,
        "seed": draw(st.integers(0, 2**31)),
        "weights": weights,
        "num_samples": draw(st.integers(1, 50)) if weighted else None,
    }


def _ranks(kw: dict, world: int, epoch: int) -> list[list[tuple[int, int, int]]]:
    out = []
    for r in range(world):
        s = EpochSampler(**kw, rank=r, world_size=world)
        s.set_epoch(epoch)
        out.append(list(s))
    return out


@FAST
@given(kw=samplers(), world=st.integers(1, 5), epoch=st.integers(0, 3))
def test_ranks_together_draw_the_one_process_order(kw: dict, world: int, epoch: int) -> None:
    one = EpochSampler(**kw)
    one.set_epoch(epoch)
    order = list(one)
    assert order == one.global_order() and len(order) == len(one)
    parts = _ranks(kw, world, epoch)
    # equal length on every rank; the padding (wrapped from the start) is less than world
    assert {len(p) for p in parts} == {len(parts[0])}
    pad = world * len(parts[0]) - len(order)
    assert 0 <= pad < world
    # interleaving the ranks gives back the one-process order, then the wrapped padding
    merged = [parts[i % world][i // world] for i in range(world * len(parts[0]))]
    assert merged[: len(order)] == order
    assert merged[len(order) :] == [(*order[i % len(order)], 1) for i in range(pad)]


@FAST
@given(kw=samplers(), world=st.integers(1, 4), per_rank=st.integers(1, 4))
def test_each_step_covers_the_items_of_the_one_process_step(
    kw: dict, world: int, per_rank: int
) -> None:
    batch = world * per_rank  # the global batch
    order = EpochSampler(**kw).global_order()
    parts = _ranks(kw, world, 0)
    for step in range(-(-len(order) // batch)):
        together = [k for p in parts for k in p[step * per_rank : (step + 1) * per_rank]]
        expected = order[step * batch : (step + 1) * batch]
        # the last step may hold padding (marked by a 4th element); the rest is the step's items
        assert Counter(k for k in together if len(k) == 3) == Counter(expected)
        assert all(k[3] == 1 for k in together if len(k) != 3)


def test_a_bad_rank_is_refused() -> None:
    with pytest.raises(ValueError, match="rank 2 is not in"):
        EpochSampler(4, rank=2, world_size=2)


@given(n=st.integers(0, 30), world=st.integers(1, 5))
def test_rank_shards_partition_an_evaluation_set(n: int, world: int) -> None:
    shards = [list(RankShard(n, r, world)) for r in range(world)]
    assert sorted(i for s in shards for i in s) == list(range(n))
    assert [len(RankShard(n, r, world)) for r in range(world)] == [len(s) for s in shards]
