"""The Shapley side of the engine: which coalitions a batch needs and what their scores give.

Shapley values treat the channel groups as players with ``v(S) = -score`` of occluding the
groups outside ``S`` (so ``v(N) = 0`` and the values of a sample sum to its ``ALL`` score), or
with a user value function ``value_fn(occluded, full) -> [n]`` on the model evaluations
(:class:`~.batches.Evaluation`). Exact values visit all ``2**n`` coalitions and give pairwise
interactions too; sampled values visit the prefixes of seeded (antithetic) permutations. The
coalitions are scored by the same batched forwards as the occlusions
(:meth:`~.engine.OcclusionEngine.compute`, deduplicated). The pure maths is in
:mod:`modalens.attribution.shapley`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from ..errors import SpecError
from .batches import Batch, Evaluation, Unoccluded
from .options import AttributionOptions
from .shapley import (
    ShapleyResult,
    check_exact_players,
    coalition_masks,
    interactions_from_table,
    permutation_masks,
    shapley_from_permutations,
    shapley_from_table,
)

AUTO_SHAPLEY_EXACT_MAX = 10

#: ``value_fn(occluded, full) -> [n]``: a user value function
ValueFunction = Callable[[Evaluation, Evaluation], Tensor]
#: ``scorer(embedding, output, rows, full, batch) -> [n, M]``: scores of evaluated inputs
Scorer = Callable[[Tensor | None, Tensor | None, Tensor, Unoccluded, Batch], np.ndarray]
#: ``(method, group labels, values [B, F, G, M])``: one block of long rows
Block = tuple[str, list[str], np.ndarray]


def shapley_method(shapley: bool | str | None, n_groups: int, max_players: int) -> str | None:
    """``"exact"``, ``"sampled"`` or None (no Shapley values) for the ``shapley`` option.

    Args:
        shapley: False/None (none), True/``"auto"`` (exact up to
            :data:`AUTO_SHAPLEY_EXACT_MAX` groups, else sampled), ``"exact"``, ``"sampled"``.
        n_groups: the number of players.
        max_players: the most players exact values may have.

    Raises:
        ModalensError: exact values asked for too many groups.
        SpecError: an unknown method.
    """
    if shapley in (False, None, "", "none", "off"):
        return None
    if shapley in (True, "auto"):
        return "exact" if n_groups <= min(AUTO_SHAPLEY_EXACT_MAX, max_players) else "sampled"
    if shapley == "exact":
        check_exact_players(n_groups, max_players)
        return "exact"
    if shapley == "sampled":
        return "sampled"
    raise SpecError(
        f"unknown Shapley method {shapley!r}", "--shapley", "use exact, sampled or auto"
    )


@dataclass(frozen=True)
class CoalitionPlan:
    """The coalitions of ``n`` players one batch's Shapley values visit.

    Attributes:
        method: ``"exact"`` or ``"sampled"``.
        n: number of players (groups).
        orders: sampled only: the permutations ``[P, n]``.
        prefixes: sampled only: the coalitions along them ``[P, n + 1, n]`` (bool).
    """

    method: str
    n: int
    orders: np.ndarray | None = None
    prefixes: np.ndarray | None = None

    @classmethod
    def create(cls, method: str, n: int, permutations: int, seed: int) -> CoalitionPlan:
        """The plan of ``method`` (seeded permutations for ``"sampled"``)."""
        if method == "exact":
            return cls("exact", n)
        orders, prefixes = permutation_masks(n, permutations, seed)
        return cls("sampled", n, orders, prefixes)

    def occlusions(self) -> np.ndarray:
        """Occlusion masks ``[K, n]`` (True = occluded) of every visited coalition but the
        full one (whose value is 0 with ``v(S) = -score``)."""
        if self.method == "exact":
            return ~coalition_masks(self.n)[:-1]
        assert self.prefixes is not None
        flat = self.prefixes.reshape(-1, self.n)
        return ~flat[~flat.all(1)]

    def present(self) -> np.ndarray:
        """Every visited coalition ``[M, n]`` (True = present) of a value table."""
        if self.method == "exact":
            return coalition_masks(self.n)
        assert self.prefixes is not None
        return np.unique(self.prefixes.reshape(-1, self.n), axis=0)

    def blocks(
        self,
        scores: np.ndarray,
        lookup: Mapping[bytes, int],
        groups: Sequence[str],
        interactions: bool,
    ) -> list[Block]:
        """Shapley (and exact interaction) values from occlusion scores.

        Args:
            scores: ``[B, F, U, M]`` scores of occlusion masks.
            lookup: occlusion mask bytes -> index into ``U``.
            groups: the player names.
            interactions: add the pairwise interactions of exact values.

        Returns:
            Blocks ``(method, labels, values [B, F, G, M])``.
        """
        g = self.n

        def v_of(present: np.ndarray) -> np.ndarray:  # -> [B, F, M]
            occ = ~present
            if not occ.any():
                return np.zeros((scores.shape[0], scores.shape[1], scores.shape[3]))
            return -scores[:, :, lookup[occ.tobytes()]]

        names = list(groups)
        if self.method == "exact":
            table = np.stack([v_of(p) for p in coalition_masks(g)], axis=-1)  # [B,F,M,2^g]
            phi = shapley_from_table(table)  # [B,F,M,g]
            out: list[Block] = [("shapley", names, phi.transpose(0, 1, 3, 2))]
            if interactions and g >= 2:
                inter = interactions_from_table(table)  # [B,F,M,g,g]
                iu, ju = np.triu_indices(g, 1)
                vals = inter[..., iu, ju]  # [B,F,M,P]
                pairs = [f"{names[i]}&{names[j]}" for i, j in zip(iu, ju, strict=True)]
                out.append(("interaction", pairs, vals.transpose(0, 1, 3, 2)))
            return out
        assert self.orders is not None and self.prefixes is not None
        p = self.orders.shape[0]
        pv = np.stack(
            [np.stack([v_of(self.prefixes[r, k]) for k in range(g + 1)], -1) for r in range(p)],
            -2,
        )  # [B,F,M,P,g+1]
        phi, _ = shapley_from_permutations(self.orders, pv)
        return [("shapley", names, phi.transpose(0, 1, 3, 2))]

    def result(self, table: np.ndarray, groups: Sequence[str], interactions: bool) -> ShapleyResult:
        """A :class:`ShapleyResult` from values ``[B, M]`` of the :meth:`present` coalitions."""
        names = list(groups)
        if self.method == "exact":
            phi = shapley_from_table(table)
            inter = interactions_from_table(table) if interactions else None
            return ShapleyResult(names, phi, inter, table, np.zeros_like(phi))
        assert self.orders is not None and self.prefixes is not None
        present = self.present()
        lookup = {m.tobytes(): i for i, m in enumerate(present)}
        idx = np.array(
            [
                [lookup[self.prefixes[r, k].tobytes()] for k in range(self.n + 1)]
                for r in range(self.orders.shape[0])
            ]
        )
        phi, se = shapley_from_permutations(self.orders, table[:, idx])
        extra = {"permutations": int(self.orders.shape[0])}
        return ShapleyResult(names, phi, None, None, se, "sampled", extra)


def user_scorer(value_fn: ValueFunction) -> Scorer:
    """A scorer that hands the evaluations of occluded and full inputs to ``value_fn``.

    Returns:
        ``scorer(emb, out, rows, full, batch) -> [n, 1]`` float64.
    """

    def scorer(
        emb: Tensor | None, out: Tensor | None, rows: Tensor, full: Unoccluded, batch: Batch
    ) -> np.ndarray:
        occ = Evaluation(
            emb,
            out,
            rows,
            None if batch.target is None else batch.target[rows],
            None if batch.valid is None else batch.valid[rows],
        )
        f_emb, f_out = full.evaluation.embedding, full.evaluation.output
        ref = Evaluation(
            None if f_emb is None else f_emb[rows],
            None if f_out is None else f_out[rows],
            rows,
            occ.target,
            occ.valid,
        )
        v = torch.as_tensor(value_fn(occ, ref)).double().reshape(-1).cpu().numpy()
        return v[:, None]

    return scorer


class ScoresCoalitions(Protocol):
    """What the Shapley side needs of an engine (:class:`~.engine.OcclusionEngine`)."""

    options: AttributionOptions
    group_names: list[str]

    def fill_keys(self) -> list[tuple[str, int]]:
        """``(strategy, draw)`` pairs evaluated per sample."""
        ...

    def compute(
        self,
        batch: Batch,
        occluded: np.ndarray,
        scorer: Scorer | None = None,
        n_metrics: int | None = None,
    ) -> np.ndarray:
        """Scores ``[B, F, K, M]`` of batch rows x fills x occlusion masks."""
        ...

    def evaluate(self, batch: Batch) -> tuple[Tensor | None, Tensor | None]:
        """``(embedding, output)`` of the batch's unoccluded inputs."""
        ...


def batch_shapley(
    engine: ScoresCoalitions, batch: Batch, value_fn: ValueFunction | None = None
) -> ShapleyResult:
    """Shapley values ``[B, G]`` of one batch for the engine's first strategy and metric
    (draws averaged), exact unless the ``shapley`` option says ``"sampled"`` (or
    ``"auto"``/True with more than 10 groups).

    Args:
        engine: the engine scoring the coalitions.
        batch: the batch.
        value_fn: ``value_fn(occluded, full) -> [n]`` replacing ``v(S) = -score``.

    Returns:
        The values (and interactions when exact and the ``interactions`` option is on).

    Raises:
        ModalensError: exact values for more than ``max_players`` groups.
    """
    o = engine.options
    g = len(engine.group_names)
    method = shapley_method(o.shapley, g, o.max_players) or "exact"
    if method == "exact":
        check_exact_players(g, o.max_players)
    plan = CoalitionPlan.create(method, g, o.permutations, o.seed)
    present = plan.present()
    occluded = ~present
    need = occluded.any(1)
    scorer = None if value_fn is None else user_scorer(value_fn)
    vals = engine.compute(batch, occluded[need], scorer=scorer, n_metrics=1 if scorer else None)
    first = [i for i, (s, _) in enumerate(engine.fill_keys()) if s == o.strategies[0]]
    vals = np.nanmean(vals[..., 0][:, first], axis=1)
    table = np.zeros((vals.shape[0], present.shape[0]))
    if value_fn is None:
        table[:, need] = -vals
    else:
        table[:, need] = vals
        table[:, ~need] = _full_value(engine, batch, value_fn)[:, None]
    return plan.result(table, engine.group_names, o.interactions)


def _full_value(engine: ScoresCoalitions, batch: Batch, value_fn: ValueFunction) -> np.ndarray:
    """``value_fn(full, full)`` of the unoccluded inputs (the grand coalition)."""
    emb, out = engine.evaluate(batch)
    with torch.inference_mode():
        rows = torch.arange(batch.image.shape[0])
        ev = Evaluation(emb, out, rows, batch.target, batch.valid)
        return torch.as_tensor(value_fn(ev, ev)).double().reshape(-1).cpu().numpy()
