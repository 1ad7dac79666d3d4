"""Does ``precision="auto"`` keep fp32's scores and rankings? (and calibrates its safety factor)

For each model -- the paper's U-Net untrained (UNet(14), width 64, depth 4) on synthetic
MapInWild-like inputs, and optionally a trained run (``--run``, e.g. the demo run) on its test
split -- it attributes the same samples in fp32 and with ``auto`` (bf16 forced on with
``MODALENS_NATIVE_BF16=1`` where the CPU lacks it) and prints:

- ``ratio``: the bf16 error of each occluded score (bf16 occluded vs fp32 base, before any
  fp32 re-evaluation) over the bf16-vs-fp32 distance of its sample's unoccluded evaluation;
  the safety factor (:data:`modalens.attribution.autoprec.SAFETY`) must exceed its maximum
  over the bounded levels (``ratio_max``; ``worst_ratio_by_metric`` also shows the ``loss``
  level, whose scores ``auto`` runs in fp32 because no such bound holds there);
- the max relative error of auto against fp32 over the scores above the noise floor;
- whether every dataset-level ranking (and every per-sample ranking) equals fp32's;
- the share of occluded inputs re-evaluated in fp32.

With ``--difference`` it measures instead the *difference* estimator (both sides in bf16, what
``precision="bf16"`` computes: ``d(bf16(x_occ), bf16(x))``) against fp32, per level, distance
and fill: the scores, the share whose relative error exceeds ``--tolerance`` (the fp32 share an
oracle bound would still need) and the median and largest relative error. The batches carry
targets (random ones for the untrained model), so ``--levels loss,output,embedding`` works.

    python benchmarks/precision_check.py --run /tmp/demo/run
    python benchmarks/precision_check.py --run /tmp/demo/run --difference \
        --levels loss,output,embedding --strategies mean,zeros,ones,gaussian
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Any

import numpy as np
import pandas as pd
import torch
from occlusion_speed import make_data  # this folder's benchmark: the same inputs

from modalens.attribution import OcclusionEngine, groups_from_spec, summarize_scores
from modalens.attribution import engine as engine_module
from modalens.attribution.aggregation import BLOCK
from modalens.attribution.autoprec import SAFETY, noise_floor
from modalens.attribution.levels import LEVELS, Level
from modalens.models import UNet
from modalens.training import load_run

GROUPS = {"s2": list(range(10)), "s1": [10, 11], "esa_wc": [12], "viirs": [13]}
KEYS = ["sample_id", "method", "level", "distance", "strategy", "group", "draw"]


def run_batches(eng: OcclusionEngine, batches: list[Any]) -> pd.DataFrame:
    """Scores of every batch with one engine."""
    return pd.concat([eng.score_batch(b) for b in batches], ignore_index=True)


class AllBounded:
    """The level registry with every level bounded: the loss level's bf16 scores too, which
    ``auto`` itself never keeps (its error is not bounded; autoprec)."""

    def get(self, name: str) -> Level:
        return dataclasses.replace(LEVELS.get(name), bounded=True)


def raw_bf16(model: torch.nn.Module, groups: Any, batches: list[Any], kw: dict) -> pd.DataFrame:
    """bf16 scores before any fp32 re-evaluation, with each sample's observed bf16 error
    (``observed``) and scale (``scale``) per level and distance."""
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    saved = engine_module.needs_fp32, engine_module.hopeless

    def keep(scores, exact, bounds, ranked, tol, scales):  # type: ignore[no-untyped-def]
        seen.append((np.asarray(bounds) / SAFETY, np.asarray(scales)))
        return np.zeros_like(exact)

    engine_module.needs_fp32 = keep
    engine_module.hopeless = lambda bounds, scales, tol: np.zeros(len(bounds), dtype=bool)
    engine_module.LEVELS = AllBounded()  # type: ignore[assignment]
    try:
        eng = OcclusionEngine(model, groups, precision="auto", **kw)
        frames = []
        for b in batches:
            rows = eng.score_batch(b)
            obs, scale = seen[-1]
            sids = list(dict.fromkeys(rows["sample_id"]))
            for j, (lv, dist) in enumerate(eng.metrics):
                sel = (rows.level == lv) & (rows.distance == dist)
                for name, arr in (("observed", obs), ("scale", scale)):
                    rows.loc[sel, name] = rows.loc[sel, "sample_id"].map(
                        dict(zip(sids, arr[:, j], strict=True))
                    )
            frames.append(rows)
    finally:
        engine_module.needs_fp32, engine_module.hopeless = saved
        engine_module.LEVELS = LEVELS
    return pd.concat(frames, ignore_index=True)


def rankings_equal(a: pd.DataFrame, b: pd.DataFrame) -> tuple[bool, bool]:
    """(dataset-level rankings equal, per-sample rankings equal) of occlusion scores."""
    sa, sb = summarize_scores(a, n_boot=0), summarize_scores(b, n_boot=0)
    sm = sa.merge(sb, on=[*BLOCK, "group"], suffixes=("_a", "_b"))
    sm = sm[(sm["group"] != "ALL") & (sm["method"] == "occlusion")]
    dataset = bool((sm["rank_a"] == sm["rank_b"]).all())
    m = a.merge(b, on=KEYS, suffixes=("_a", "_b"))
    m = m[(m["group"] != "ALL") & (m["method"] == "occlusion")]
    per = [*BLOCK, "sample_id", "draw"]
    ra = m.groupby(per)["value_a"].rank(method="min")
    rb = m.groupby(per)["value_b"].rank(method="min")
    return dataset, bool((ra == rb).all())


def check(name: str, model: torch.nn.Module, groups: Any, batches: list[Any], kw: dict) -> dict:
    """The figures of one model (see the module docstring)."""
    fp32 = run_batches(OcclusionEngine(model, groups, precision="fp32", **kw), batches)
    raw = raw_bf16(model, groups, batches, kw)
    eng = OcclusionEngine(model, groups, precision="auto", **kw)
    auto = run_batches(eng, batches)
    m = fp32.merge(raw[[*KEYS, "value", "observed", "scale"]], on=KEYS, suffixes=("", "_raw"))
    m = m.merge(auto[[*KEYS, "value"]], on=KEYS, suffixes=("", "_auto"))
    m = m[m["method"] == "occlusion"]
    err_raw = (m["value_raw"] - m["value"]).abs()
    grow = 1 + m["value_raw"].abs() / m["scale"].where(m["scale"] > 0, 1.0)
    ratio = (err_raw / (m["observed"] * grow)).replace([np.inf], np.nan)
    bounded = m["level"].map(lambda lv: LEVELS.get(lv).bounded)  # auto keeps bf16 only there
    floor = noise_floor(m["observed"].to_numpy() * SAFETY)
    above = m["value"].abs().to_numpy() > floor
    rel = ((m["value_auto"] - m["value"]).abs() / m["value"].abs()).to_numpy()
    rel_raw = (err_raw / m["value"].abs()).to_numpy()
    dataset, sample = rankings_equal(fp32, auto)
    dataset_raw, _ = rankings_equal(fp32, raw)
    rep = eng.precision_report()
    out = {
        "model": name,
        "scores": len(m),
        "ratio_max": float(np.nanmax(ratio[bounded]) if bounded.any() else np.nan),
        "ratio_p99": float(np.nanquantile(ratio[bounded], 0.99) if bounded.any() else np.nan),
        "bf16_max_rel": float(np.nanmax(rel_raw[above])),
        "bf16_dataset_rank_equal": dataset_raw,
        "auto_max_rel": float(np.nanmax(rel[above])) if above.any() else float("nan"),
        "tolerance": kw["tolerance"],
        "below_floor": int((~above).sum()),
        "auto_dataset_rank_equal": dataset,
        "auto_sample_rank_equal": sample,
        "fp32_share": rep.get("fp32_share", float("nan")),
    }
    worst = m.assign(ratio=ratio).groupby(["level", "distance"])["ratio"].max()
    out["worst_ratio_by_metric"] = {f"{a}/{b}": round(float(v), 2) for (a, b), v in worst.items()}
    return out


def difference_check(
    name: str, model: torch.nn.Module, groups: Any, batches: list[Any], kw: dict
) -> pd.DataFrame:
    """The bf16 difference estimator against fp32 (``--difference``, module docstring)."""
    fp32 = run_batches(OcclusionEngine(model, groups, precision="fp32", **kw), batches)
    bf16 = run_batches(OcclusionEngine(model, groups, precision="bf16", **kw), batches)
    m = fp32.merge(bf16[[*KEYS, "value"]], on=KEYS, suffixes=("", "_bf16"))
    m = m[(m["method"] == "occlusion") & (m["group"] != "ALL")]
    rel = (m["value_bf16"] - m["value"]).abs() / m["value"].abs()
    tol = kw["tolerance"]
    table = (
        m.assign(rel=rel)
        .groupby(["level", "distance", "strategy"])["rel"]
        .agg(
            scores="size", over_tol=lambda r: float((r > tol).mean()), median="median", max="max"
        )  # fmt: skip
        .reset_index()
    )
    return table.assign(model=name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", default=None, help="a trained run folder (e.g. the demo run)")
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--size", type=int, default=128, help="side of the synthetic inputs")
    ap.add_argument("--width", type=int, default=64, help="base width of the untrained U-Net")
    ap.add_argument("--strategies", default="zeros,ones,mean,gaussian")
    ap.add_argument("--distances", default="euclidean,relative")
    ap.add_argument("--levels", default="loss,output,embedding")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tolerance", type=float, default=0.01, help="auto's relative tolerance")
    ap.add_argument("--quick", action="store_true", help="4 samples of 64x64, width 16")
    ap.add_argument("--difference", action="store_true", help="the bf16 difference estimator")
    ap.add_argument("--seed", type=int, default=0, help="seed of the untrained model and inputs")
    args = ap.parse_args()
    if args.quick:
        args.samples, args.size, args.width = 4, 64, 16
    os.environ.setdefault("MODALENS_NATIVE_BF16", "1")  # the bf16 path on any CPU
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    kw = {"strategies": args.strategies, "distances": args.distances, "levels": args.levels}
    kw["tolerance"] = args.tolerance
    model = UNet(14, base_width=args.width, depth=4).eval()
    x = make_data(args.samples, args.size, seed=args.seed + 1)
    gen = torch.Generator().manual_seed(args.seed + 2)
    t = torch.rand(len(x), 1, args.size, args.size, generator=gen)
    batches = [
        {"image": x[s : s + 4], "target": t[s : s + 4],
         "id": [f"x{i}" for i in range(s, min(s + 4, len(x)))]}
        for s in range(0, len(x), 4)
    ]  # fmt: skip
    what = difference_check if args.difference else check
    found: list[Any] = [what(f"untrained UNet(14) w{args.width}", model, GROUPS, batches, kw)]
    if args.run:
        run = load_run(args.run)
        ds = run.dataset("test")
        items = [ds[i] for i in range(min(args.samples, len(ds)))]
        tb = [
            {
                "image": torch.stack([it["image"] * it["valid"][None] for it in items[s : s + 4]]),
                "valid": torch.stack([it["valid"] for it in items[s : s + 4]]),
                "target": torch.stack([it["target"] for it in items[s : s + 4]]),
                "id": [it["id"] for it in items[s : s + 4]],
            }
            for s in range(0, len(items), 4)
        ]
        groups = groups_from_spec(run.spec, "modalities")
        found.append(what(f"trained {args.run}", run.model.eval(), groups, tb, kw))
    if args.difference:
        print(pd.concat(found, ignore_index=True).to_string(index=False, float_format="%.4f"))
        return
    rows = found
    for r in rows:
        print(r, flush=True)
    cols = [c for c in rows[0] if c != "worst_ratio_by_metric"]
    print("\n| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        cells = [f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in cols]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
