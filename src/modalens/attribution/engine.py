"""TODO docstring: attribution/engine.py"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from ..errors import DataError, SpecError
from ..models.optimize import prepare_model
from ..precision import parse_precision, torch_dtype
from ..tasks.losses import masked_mse
from .batches import Batch, Evaluation, as_batch
from .distances import distances
from .forward import _Forward
from .groups import ALL, Groups, normalize_groups
from .options import (
    AUTO_SHAPLEY_EXACT_MAX,
    DISTANCES,
    LEVELS,
    NOISE_STRATEGIES,
    RANDOM_STRATEGIES,
    STRATEGIES,
    _as_list,
    _check_choice,
)
from .shapley import (
    MAX_EXACT_PLAYERS,
    ShapleyResult,
    check_exact_players,
    coalition_masks,
    interactions_from_table,
    permutation_masks,
    shapley_from_permutations,
    shapley_from_table,
    unique_masks,
)
from .store import COLUMNS


def _stable_seed(*parts: Any) -> int:
    h = hashlib.blake2b("\x1f".join(str(p) for p in parts).encode(), digest_size=8)
    return int.from_bytes(h.digest(), "little") & ((1 << 63) - 1)


@dataclass
class _Fill:
    kind: str  # "const" | "tensor" | "donor" | "nan"
    value: Tensor | None = None  # const: [1, ..C.., 1]; tensor: [B, *sample]
    donor: Tensor | None = None  # permute: donor row per sample [B]


class OcclusionEngine:
    """Occlusion scores of one model for batches of inputs (see the module docstring).

    Args:
        model: any ``nn.Module`` taking the stacked input.
        groups: ``{name: [channel indices]}`` (or a list of index lists) on ``channel_axis``.
        strategies, distances, levels: see :data:`STRATEGIES`, :data:`DISTANCES`,
            :data:`LEVELS` (lists or comma-separated strings).
        embedding: ``"auto"`` (``encode()`` bottleneck, else ``embed()``), ``"encode"``,
            ``"embed"``, a submodule name (forward hook) or ``fn(model, x) -> Tensor``.
        channel_axis: axis of the channels in a batch (1 for images; -1 for tabular/time series).
        draws: draws of the random strategies (uniform, gaussian, permute).
        seed: seed of noise and permutations.
        mean: per-channel fill of the ``mean`` strategy in normalised space (default 0).
        loss_fn: ``loss_fn(pred, target, valid) -> [B]`` for ``level="loss"`` (default MSE).
        precision: ``fp32`` (default) or ``bf16`` (bf16 weights and inputs after folding).
        optimize: fold BatchNorm and use channels-last (results equal up to float rounding).
        chunk_size: inputs per forward; default: cache-sized on CPU (``2**20`` input elements
            in fp32, ``2**21`` in bf16: 1 or 2 at 14x256x256), ``2**24`` on GPUs.
        include_all: add the ``ALL`` reference row.
        device: where the model runs (default: where its parameters are).
    """

    def __init__(
        self,
        model: nn.Module,
        groups: Groups,
        *,
        strategies: str | Sequence[str] = ("zeros",),
        distances: str | Sequence[str] = ("euclidean",),
        levels: str | Sequence[str] = ("embedding",),
        embedding: Any = "auto",
        channel_axis: int = 1,
        draws: int = 1,
        seed: int = 0,
        mean: Sequence[float] | Tensor | None = None,
        loss_fn: Callable[..., Tensor] | None = None,
        precision: str = "fp32",
        optimize: bool = True,
        chunk_size: int | None = None,
        include_all: bool = True,
        device: str | torch.device | None = None,
    ) -> None:
        self.strategies = _as_list(strategies, ("zeros",))
        self.distance_kinds = _as_list(distances, ("euclidean",))
        self.levels = _as_list(levels, ("embedding",))
        _check_choice(self.strategies, STRATEGIES, "strategy")
        _check_choice(self.distance_kinds, DISTANCES, "distance")
        _check_choice(self.levels, LEVELS, "level")
        precision = parse_precision(precision, "--precision", ("fp32", "bf16"))
        n_ch = getattr(model, "in_channels", None)
        self.groups = normalize_groups(groups, n_ch if isinstance(n_ch, int) else None)
        self.group_names = list(self.groups)
        self.source_model = model
        self.embedding = embedding
        self.channel_axis = int(channel_axis)
        self.draws = max(1, int(draws))
        self.seed = int(seed)
        self.mean = None if mean is None else torch.as_tensor(mean, dtype=torch.float32).flatten()
        self.loss_fn = loss_fn or masked_mse
        self.precision = precision
        self.optimize = bool(optimize)
        self.chunk_size = chunk_size
        self.include_all = bool(include_all)
        if device is None:
            p = next(iter(model.parameters()), None)
            device = p.device if p is not None else "cpu"
        self.device = torch.device(device)
        self.dtype = torch_dtype(precision)
        self.metrics: list[tuple[str, str]] = []
        for lv in self.levels:
            if lv == "loss":
                self.metrics.append(("loss", "loss"))
            else:
                self.metrics.extend((lv, d) for d in self.distance_kinds)
        self.need_embedding = "embedding" in self.levels
        self.need_output = "output" in self.levels or "loss" in self.levels
        self._model: nn.Module | None = None
        self._forward: _Forward | None = None
        self._channels_last = False
        self._all_cache: dict[Any, tuple[Tensor | None, Tensor | None]] = {}
        self._gmat: Tensor | None = None
        self.forwards = 0  # inputs evaluated (for tests and benchmarks)

    # ------------------------------------------------------------------ set-up
    def fill_keys(self) -> list[tuple[str, int]]:
        """``(strategy, draw)`` pairs evaluated per sample."""
        keys = []
        for s in self.strategies:
            for d in range(self.draws if s in RANDOM_STRATEGIES else 1):
                keys.append((s, d))
        return keys

    def config(self) -> dict[str, Any]:
        """What determines the scores (written beside streamed results)."""
        emb = (
            self.embedding
            if isinstance(self.embedding, str)
            else getattr(self.embedding, "__name__", "callable")
        )
        return {
            "groups": self.groups,
            "strategies": self.strategies,
            "distances": self.distance_kinds,
            "levels": self.levels,
            "embedding": emb,
            "channel_axis": self.channel_axis,
            "draws": self.draws,
            "seed": self.seed,
            "mean": None if self.mean is None else [float(v) for v in self.mean],
            "precision": self.precision,
            "include_all": self.include_all,
        }

    def _setup(self, x: Tensor) -> None:
        if self._model is not None:
            return
        ax = self.channel_axis % x.ndim
        self._channels_last = self.optimize and x.ndim == 4 and ax == 1
        keep = [self.embedding] if isinstance(self.embedding, str) else []
        self._model = prepare_model(
            self.source_model, self.precision, self.optimize, self._channels_last, keep
        ).to(self.device)
        self._forward = _Forward(self._model, self.embedding, self.need_embedding, self.need_output)

    @property
    def model(self) -> nn.Module:
        """The prepared inference copy (after the first batch)."""
        if self._model is None:
            raise RuntimeError("the engine has not seen a batch yet")
        return self._model

    def _axis(self, x: Tensor) -> int:
        ax = self.channel_axis % x.ndim
        if ax == 0:
            raise SpecError("the channel axis cannot be the batch axis (0)", "channel_axis")
        return ax

    def _group_matrix(self, n_channels: int) -> Tensor:
        if self._gmat is None or self._gmat.shape[1] != n_channels:
            gm = torch.zeros((len(self.group_names), n_channels), dtype=torch.bool)
            for g, name in enumerate(self.group_names):
                chans = self.groups[name]
                if max(chans) >= n_channels:
                    raise SpecError(
                        f"group {name!r} uses channel {max(chans)} but the input has "
                        f"{n_channels} channels on axis {self.channel_axis}",
                        "groups",
                        "check the grouping and channel_axis",
                    )
                gm[g, chans] = True
            self._gmat = gm
        return self._gmat

    def _covers_all(self, n_channels: int) -> bool:
        return bool(self._group_matrix(n_channels).any(0).all())

    def _chunk(self, x: Tensor) -> int:
        if self.chunk_size:
            return max(1, int(self.chunk_size))
        # cache-sized: on CPU the high-resolution layers run fastest when one input's
        # activations stay in the last-level cache (UNet(14) at 256x256: 197 GFLOP/s at 1
        # input per forward vs 173 at 8 in fp32; bf16 best at 2), bigger chunks elsewhere
        per = max(1, x[0].numel())
        budget = 2**20 if self.dtype == torch.float32 else 2**21
        if self.device.type != "cpu":
            budget = 2**24
        return int(max(1, min(64, budget // per)))

    def _bshape(self, x: Tensor, n: int, c: int) -> list[int]:
        ax = self._axis(x)
        return [n] + [c if d == ax else 1 for d in range(1, x.ndim)]

    # ------------------------------------------------------------------ fills
    def _make_fill(self, strategy: str, draw: int, batch: Batch, x: Tensor) -> _Fill:
        ax = self._axis(x)
        c = x.shape[ax]
        if strategy in ("zeros", "ones", "mean"):
            if strategy == "mean":
                vals = torch.zeros(c)
                if self.mean is not None:
                    if self.mean.numel() != c:
                        raise SpecError(
                            f"mean has {self.mean.numel()} values for {c} channels",
                            "mean",
                            "give one normalised mean per input channel",
                        )
                    vals = self.mean.clone()
            else:
                vals = torch.full((c,), 0.0 if strategy == "zeros" else 1.0)
            return _Fill("const", vals.reshape(self._bshape(x, 1, c)).to(x.device, x.dtype))
        if strategy in NOISE_STRATEGIES:
            shape = tuple(x.shape[1:])
            noise = torch.empty((x.shape[0], *shape), dtype=torch.float32)
            for i, sid in enumerate(batch.ids):
                noise[i] = self.noise(strategy, sid, shape, draw)
            return _Fill("tensor", noise.to(x.device, x.dtype))
        # permute: a seeded derangement of the batch
        n = x.shape[0]
        if n < 2:
            return _Fill("nan")
        rng = np.random.default_rng(_stable_seed(self.seed, strategy, draw, *batch.ids))
        order = rng.permutation(n)
        donor = np.empty(n, dtype=np.int64)
        donor[order] = order[(np.arange(n) + 1) % n]
        return _Fill("donor", donor=torch.as_tensor(donor))

    def noise(self, strategy: str, sample_id: str, shape: Sequence[int], draw: int = 0) -> Tensor:
        """The noise fill the engine uses for one sample (to reproduce it, e.g. for Captum)."""
        g = torch.Generator().manual_seed(_stable_seed(self.seed, strategy, draw, sample_id))
        if strategy == "uniform":
            return torch.rand(tuple(shape), generator=g)
        return torch.randn(tuple(shape), generator=g)

    # ------------------------------------------------------------------ evaluation
    def _run(self, x: Tensor) -> tuple[Tensor | None, Tensor | None]:
        assert self._forward is not None
        xin = x.to(self.dtype)
        if self._channels_last:
            xin = xin.contiguous(memory_format=torch.channels_last)
        emb, out = self._forward(xin)
        self.forwards += int(x.shape[0])
        emb = None if emb is None else emb.float()
        out = None if out is None else out.float()
        return emb, out

    def _evaluate(self, x: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """Chunked evaluation of full inputs."""
        step = _balanced(x.shape[0], self._chunk(x))
        embs, outs = [], []
        for s in range(0, x.shape[0], step):
            e, o = self._run(x[s : s + step])
            embs.append(e)
            outs.append(o)
        emb = torch.cat(embs) if embs[0] is not None else None
        out = torch.cat(outs) if outs[0] is not None else None
        return emb, out

    def _scores(
        self,
        emb: Tensor | None,
        out: Tensor | None,
        rows: Tensor,
        full: tuple[Tensor | None, Tensor | None, Tensor | None],
        batch: Batch,
    ) -> np.ndarray:
        """Scores ``[n, len(metrics)]`` of evaluated inputs of batch rows ``rows``."""
        f_emb, f_out, f_loss = full
        res = np.full((rows.shape[0], len(self.metrics)), np.nan)
        valid = (
            None
            if batch.valid is None
            else batch.valid.to(out.device if out is not None else "cpu")[rows]
        )
        col = 0
        for lv in self.levels:
            if lv == "embedding":
                assert emb is not None and f_emb is not None
                k = len(self.distance_kinds)
                res[:, col : col + k] = distances(f_emb[rows], emb, self.distance_kinds)
                col += k
            elif lv == "output":
                assert out is not None and f_out is not None
                k = len(self.distance_kinds)
                res[:, col : col + k] = distances(f_out[rows], out, self.distance_kinds, valid)
                col += k
            else:
                assert out is not None and f_loss is not None
                tgt = batch.target
                if tgt is None:
                    raise DataError(
                        "level 'loss' needs targets but the batch has none",
                        "levels",
                        "give batches with a 'target' or drop the loss level",
                    )
                occ = self.loss_fn(out, tgt.to(out.device)[rows], valid)
                res[:, col] = (occ.double().cpu() - f_loss[rows].double().cpu()).numpy()
                col += 1
        return res

    def _full(self, batch: Batch, x: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        emb, out = self._evaluate(x)
        loss = None
        if "loss" in self.levels:
            if batch.target is None:
                raise DataError(
                    "level 'loss' needs targets but the batch has none",
                    "levels",
                    "give batches with a 'target' or drop the loss level",
                )
            assert out is not None
            valid = None if batch.valid is None else batch.valid.to(out.device)
            loss = self.loss_fn(out, batch.target.to(out.device), valid).detach()
        return emb, out, loss

    def compute(
        self,
        batch: Batch,
        occluded: np.ndarray,
        scorer: Callable[..., np.ndarray] | None = None,
        n_metrics: int | None = None,
    ) -> np.ndarray:
        """Scores ``[B, F, K, M]`` of batch rows x fills (:meth:`fill_keys`) x occlusion masks.

        ``occluded`` is bool ``[K, G]`` (True = group occluded). ``scorer(emb, out, rows, full,
        batch) -> [n, M]`` replaces the distance scores (``full`` = the unoccluded evaluation).
        """
        x = batch.image.to(self.device)
        self._setup(x)
        ax = self._axis(x)
        c = x.shape[ax]
        gm = self._group_matrix(c)
        occluded = np.asarray(occluded, dtype=bool)
        k_masks = occluded.shape[0]
        cmask = (torch.as_tensor(occluded, dtype=torch.float32) @ gm.float()) > 0  # [K, C]
        all_row = occluded.all(1)
        covers = self._covers_all(c)
        b = x.shape[0]
        keys = self.fill_keys()
        user = scorer is not None
        scorer = scorer or self._scores
        m = n_metrics if n_metrics is not None else len(self.metrics)
        result = np.full((b, len(keys), k_masks, m), np.nan)

        with torch.inference_mode():
            full = self._full_user(batch, x) if user else self._full(batch, x)
            # tasks: (row, fill index, mask index)
            tasks: list[tuple[int, int, int]] = []
            fills: list[_Fill] = []
            for fi, (strategy, draw) in enumerate(keys):
                fill = self._make_fill(strategy, draw, batch, x)
                fills.append(fill)
                if fill.kind == "nan":
                    if strategy == "permute":
                        warnings.warn(
                            "permute needs at least 2 samples in a batch; a batch of one "
                            f"(sample {batch.ids[0]!r}) gets NaN",
                            stacklevel=2,
                        )
                    continue
                for k in range(k_masks):
                    if all_row[k] and covers and fill.kind == "const":
                        key = (strategy, tuple(x.shape[1:]), str(x.dtype))
                        if self.mean is not None and strategy == "mean":
                            key = (*key, tuple(self.mean.tolist()))
                        cached = self._all_cache.get(key)
                        if cached is None:
                            single = torch.where(
                                cmask[k].reshape(self._bshape(x, 1, c)), fill.value, x[:1]
                            )
                            cached = self._run(single)
                            self._all_cache[key] = cached
                        rows = torch.arange(b)
                        e = None if cached[0] is None else cached[0].expand(b, *cached[0].shape[1:])
                        o = None if cached[1] is None else cached[1].expand(b, *cached[1].shape[1:])
                        result[:, fi, k] = scorer(e, o, rows, full, batch)
                        continue
                    if all_row[k] and covers and fill.kind == "donor":
                        assert fill.donor is not None
                        rows = torch.arange(b)
                        d = fill.donor
                        e = None if full[0] is None else full[0][d]
                        o = None if full[1] is None else full[1][d]
                        result[:, fi, k] = scorer(e, o, rows, full, batch)
                        continue
                    tasks.extend((i, fi, k) for i in range(b))

            step = _balanced(len(tasks), self._chunk(x))
            for s in range(0, len(tasks), step):
                chunk = tasks[s : s + step]
                xc = self._build(x, chunk, fills, cmask, ax, c)
                e, o = self._run(xc)
                rows = torch.as_tensor([t[0] for t in chunk], dtype=torch.long)
                sc = scorer(e, o, rows, full, batch)
                for j, (i, fi, k) in enumerate(chunk):
                    result[i, fi, k] = sc[j]
        return result

    def _full_user(self, batch: Batch, x: Tensor) -> tuple[Tensor | None, Tensor | None, Any]:
        emb, out = self._evaluate(x)
        return emb, out, None

    def _build(
        self,
        x: Tensor,
        chunk: Sequence[tuple[int, int, int]],
        fills: Sequence[_Fill],
        cmask: Tensor,
        ax: int,
        c: int,
    ) -> Tensor:
        n = len(chunk)
        buf = torch.empty((n, *x.shape[1:]), dtype=x.dtype, device=x.device)
        by_fill: dict[int, list[int]] = {}
        for j, (_, fi, _) in enumerate(chunk):
            by_fill.setdefault(fi, []).append(j)
        for fi, pos in by_fill.items():
            rows = torch.as_tensor([chunk[j][0] for j in pos], dtype=torch.long, device=x.device)
            masks = torch.as_tensor([chunk[j][2] for j in pos], dtype=torch.long)
            cm = cmask[masks].reshape(self._bshape(x, len(pos), c)).to(x.device)
            fill = fills[fi]
            if fill.kind == "const":
                val = fill.value
            elif fill.kind == "tensor":
                assert fill.value is not None
                val = fill.value[rows]
            else:
                assert fill.donor is not None
                val = x[fill.donor.to(x.device)[rows]]
            p = torch.as_tensor(pos, dtype=torch.long, device=x.device)
            buf[p] = torch.where(cm, val, x[rows])
        return buf

    # ------------------------------------------------------------------ occlusion rows
    def _occlusion_masks(self) -> tuple[np.ndarray, list[str]]:
        g = len(self.group_names)
        masks = list(np.eye(g, dtype=bool))
        names = list(self.group_names)
        if self.include_all:
            masks.append(np.ones(g, dtype=bool))
            names.append(ALL)
        return np.stack(masks), names

    def score_batch(
        self,
        batch: Any,
        shapley: bool | str = False,
        permutations: int = 64,
        interactions: bool = True,
        max_players: int = MAX_EXACT_PLAYERS,
    ) -> pd.DataFrame:
        """Long-form scores of one batch (see the module docstring); with ``shapley``
        (``True``/``"auto"``: exact up to 10 groups, else sampled; ``"exact"``; ``"sampled"``)
        Shapley values (and exact pairwise interactions) are added from the same forwards."""
        batch = as_batch(batch)
        occ, names = self._occlusion_masks()
        g = len(self.group_names)
        sh_method = _shapley_method(shapley, g, max_players)
        extra: np.ndarray | None = None
        orders = prefixes = None
        if sh_method == "exact":
            present = coalition_masks(g)[:-1]  # all but the full coalition
            extra = ~present
        elif sh_method == "sampled":
            orders, prefixes = permutation_masks(g, permutations, self.seed)
            flat = prefixes.reshape(-1, g)
            extra = ~flat[~flat.all(1)]
        all_masks = occ if extra is None else np.concatenate([occ, extra])
        uniq_masks, inverse = unique_masks(all_masks)
        scores = self.compute(batch, uniq_masks)  # [B, F, U, M]
        keys = self.fill_keys()
        frames = [self._rows(batch, keys, names, scores[:, :, inverse[: len(names)]], "occlusion")]
        if sh_method is not None:
            lookup = {m.tobytes(): i for i, m in enumerate(uniq_masks)}
            frames.extend(
                self._shapley_rows(
                    batch, keys, scores, lookup, sh_method, orders, prefixes, interactions
                )
            )
        return pd.concat(frames, ignore_index=True)

    def _rows(
        self,
        batch: Batch,
        keys: Sequence[tuple[str, int]],
        groups: Sequence[str],
        values: np.ndarray,
        method: str,
    ) -> pd.DataFrame:
        """Long rows from ``values[B, F, G, M]``."""
        b, f, g, m = values.shape
        grid = np.indices((b, f, g, m)).reshape(4, -1)
        bi, fi, gi, mi = grid
        levels = np.array([lv for lv, _ in self.metrics], dtype=object)
        dists = np.array([d for _, d in self.metrics], dtype=object)
        strat = np.array([s for s, _ in keys], dtype=object)
        draw = np.array([d for _, d in keys], dtype=np.int64)
        return pd.DataFrame(
            {
                "sample_id": np.array(batch.ids, dtype=object)[bi],
                "window": np.array(batch.windows, dtype=object)[bi],
                "method": method,
                "level": levels[mi],
                "distance": dists[mi],
                "strategy": strat[fi],
                "group": np.array(list(groups), dtype=object)[gi],
                "draw": draw[fi],
                "value": values.reshape(-1).astype(np.float64),
            },
            columns=COLUMNS,
        )

    def _shapley_rows(
        self,
        batch: Batch,
        keys: Sequence[tuple[str, int]],
        scores: np.ndarray,
        lookup: Mapping[bytes, int],
        method: str,
        orders: np.ndarray | None,
        prefixes: np.ndarray | None,
        interactions: bool,
    ) -> list[pd.DataFrame]:
        g = len(self.group_names)

        def v_of(present: np.ndarray) -> np.ndarray:  # -> [B, F, M]
            occ = ~present
            if not occ.any():
                return np.zeros((scores.shape[0], scores.shape[1], scores.shape[3]))
            return -scores[:, :, lookup[occ.tobytes()]]

        if method == "exact":
            table = np.stack([v_of(p) for p in coalition_masks(g)], axis=-1)  # [B,F,M,2^g]
            phi = shapley_from_table(table)  # [B,F,M,g]
            out = [self._rows(batch, keys, self.group_names, phi.transpose(0, 1, 3, 2), "shapley")]
            if interactions and g >= 2:
                inter = interactions_from_table(table)  # [B,F,M,g,g]
                iu, ju = np.triu_indices(g, 1)
                vals = inter[..., iu, ju]  # [B,F,M,P]
                gn = self.group_names
                names = [f"{gn[i]}&{gn[j]}" for i, j in zip(iu, ju, strict=True)]
                out.append(
                    self._rows(batch, keys, names, vals.transpose(0, 1, 3, 2), "interaction")
                )
            return out
        assert orders is not None and prefixes is not None
        p = orders.shape[0]
        pv = np.stack(
            [np.stack([v_of(prefixes[r, k]) for k in range(g + 1)], -1) for r in range(p)], -2
        )  # [B,F,M,P,g+1]
        phi, _ = shapley_from_permutations(orders, pv)
        return [self._rows(batch, keys, self.group_names, phi.transpose(0, 1, 3, 2), "shapley")]

    # ------------------------------------------------------------------ Shapley API
    def shapley(
        self,
        x: Any,
        method: str = "exact",
        permutations: int = 64,
        interactions: bool = True,
        max_players: int = MAX_EXACT_PLAYERS,
        value_fn: Callable[[Evaluation, Evaluation], Tensor] | None = None,
    ) -> ShapleyResult:
        """Shapley values ``[B, G]`` of one batch for the first strategy/metric (draws
        averaged); ``value_fn(occluded, full) -> [n]`` replaces ``v(S) = -score``."""
        batch = as_batch(x)
        g = len(self.group_names)
        method = _shapley_method(method, g, max_players) or "exact"
        if method == "exact":
            present = coalition_masks(g)
        else:
            orders, prefixes = permutation_masks(g, permutations, self.seed)
            present = np.unique(prefixes.reshape(-1, g), axis=0)
        occluded = ~present
        need = occluded.any(1)
        scorer = None
        if value_fn is not None:
            scorer = self._user_scorer(value_fn)
        vals = self.compute(batch, occluded[need], scorer=scorer, n_metrics=1 if scorer else None)
        first = [i for i, (s, _) in enumerate(self.fill_keys()) if s == self.strategies[0]]
        vals = np.nanmean(vals[..., 0][:, first], axis=1)
        table = np.zeros((vals.shape[0], present.shape[0]))
        if value_fn is None:
            table[:, need] = -vals
        else:
            table[:, need] = vals
            table[:, ~need] = self._user_full_value(batch, value_fn)[:, None]
        if method == "exact":
            phi = shapley_from_table(table)
            inter = interactions_from_table(table) if interactions else None
            return ShapleyResult(self.group_names, phi, inter, table, np.zeros_like(phi))
        lookup = {m.tobytes(): i for i, m in enumerate(present)}
        idx = np.array(
            [
                [lookup[prefixes[r, k].tobytes()] for k in range(g + 1)]
                for r in range(orders.shape[0])
            ]
        )
        phi, se = shapley_from_permutations(orders, table[:, idx])
        return ShapleyResult(
            self.group_names, phi, None, None, se, "sampled", {"permutations": int(orders.shape[0])}
        )

    def _user_scorer(self, value_fn: Callable[[Evaluation, Evaluation], Tensor]) -> Callable:
        def scorer(emb, out, rows, full, batch):  # noqa: ANN001, ANN202
            occ = Evaluation(
                emb,
                out,
                rows,
                None if batch.target is None else batch.target[rows],
                None if batch.valid is None else batch.valid[rows],
            )
            ref = Evaluation(
                None if full[0] is None else full[0][rows],
                None if full[1] is None else full[1][rows],
                rows,
                occ.target,
                occ.valid,
            )
            v = torch.as_tensor(value_fn(occ, ref)).double().reshape(-1).cpu().numpy()
            return v[:, None]

        return scorer

    def _user_full_value(self, batch: Batch, value_fn: Callable) -> np.ndarray:
        x = batch.image.to(self.device)
        self._setup(x)
        with torch.inference_mode():
            emb, out = self._evaluate(x)
            rows = torch.arange(x.shape[0])
            ev = Evaluation(emb, out, rows, batch.target, batch.valid)
            return torch.as_tensor(value_fn(ev, ev)).double().reshape(-1).cpu().numpy()

    # ------------------------------------------------------------------ maps
    def map_fn(
        self, strategy: str | None = None, reduce: str = "mean"
    ) -> Callable[[Tensor], Tensor]:
        """``fn(x [B,C,h,w]) -> [B,G,h,w]``: per pixel ``|prediction - occluded prediction|``
        per group (``reduce`` over output channels: ``mean`` or ``max``), for
        :func:`modalens.inference.sliding_window`. All occlusions of a call go through
        chunked batched forwards. Noise comes from a generator seeded once, so a fixed tiling
        is reproducible."""
        strategy = strategy or self.strategies[0]
        _check_choice([strategy], STRATEGIES, "strategy")
        if strategy == "permute":
            raise SpecError(
                "permute has no meaning for single scenes",
                "--strategy",
                "use zeros, ones, uniform, gaussian or mean",
            )
        gen = torch.Generator().manual_seed(_stable_seed(self.seed, "map", strategy))

        def fn(x: Tensor) -> Tensor:
            x = x.to(self.device).float()
            self._setup(x)
            assert self._forward is not None
            saved = self._forward.need_output
            self._forward.need_output = True  # a hook must not cut the forward short
            try:
                with torch.inference_mode():
                    return self._map(x, strategy, gen, reduce)
            finally:
                self._forward.need_output = saved

        return fn

    def _map(self, x: Tensor, strategy: str, gen: torch.Generator, reduce: str) -> Tensor:
        ax = self._axis(x)
        c = x.shape[ax]
        gm = self._group_matrix(c)
        b, g = x.shape[0], len(self.group_names)
        if strategy in NOISE_STRATEGIES:
            draw = torch.rand if strategy == "uniform" else torch.randn
            fill = draw(tuple(x.shape), generator=gen).to(x.device)
        else:
            batch = Batch(x, None, None, [""] * b, [""] * b)
            f = self._make_fill(strategy, 0, batch, x)
            assert f.value is not None
            fill = f.value.expand_as(x)
        step = self._chunk(x)
        pred = torch.cat([self._predict(x[s : s + step]) for s in range(0, b, step)])
        tasks = [(i, gi) for gi in range(g) for i in range(b)]
        out = torch.empty((b, g, *pred.shape[2:]), dtype=torch.float32)
        for s in range(0, len(tasks), step):
            chunk = tasks[s : s + step]
            rows = torch.as_tensor([t[0] for t in chunk], dtype=torch.long)
            gis = torch.as_tensor([t[1] for t in chunk], dtype=torch.long)
            cm = gm[gis].reshape(self._bshape(x, len(chunk), c)).to(x.device)
            occ = torch.where(cm, fill[rows], x[rows])
            d = (pred[rows] - self._predict(occ)).abs()
            d = d.mean(1) if reduce == "mean" else d.amax(1)
            out[rows, gis] = d.cpu()
        return out

    def _predict(self, x: Tensor) -> Tensor:
        assert self._forward is not None
        _, out = self._forward(self._cast(x))
        assert out is not None
        self.forwards += int(x.shape[0])
        return out.float()

    def _cast(self, x: Tensor) -> Tensor:
        x = x.to(self.dtype)
        if self._channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


def _balanced(n: int, budget: int) -> int:
    """Chunk length <= ``budget`` splitting ``n`` items into equal-sized chunks."""
    if n <= 0:
        return max(1, budget)
    chunks = -(-n // max(1, budget))
    return -(-n // chunks)


def _shapley_method(shapley: bool | str | None, g: int, max_players: int) -> str | None:
    if shapley in (False, None, "", "none", "off"):
        return None
    if shapley in (True, "auto"):
        return "exact" if g <= min(AUTO_SHAPLEY_EXACT_MAX, max_players) else "sampled"
    if shapley == "exact":
        check_exact_players(g, max_players)
        return "exact"
    if shapley == "sampled":
        return "sampled"
    raise SpecError(
        f"unknown Shapley method {shapley!r}", "--shapley", "use exact, sampled or auto"
    )
