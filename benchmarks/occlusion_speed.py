"""Occlusion throughput on the paper's U-Net (UNet(14), 256x256, 4 modalities + ALL, zeros).

Side by side in one run: the methods run in small units (one sample for (a), one batch of 8
for the others), interleaved and rotated over ``--rounds`` rounds, and each rate is total
samples over total time, so load from other processes hurts every method alike:

  (a) reference semantics: a Python loop with one full-model forward per occlusion at batch
      size 1 (unoccluded + 4 modalities + ALL), as the paper's code does;
  (b) Captum FeatureAblation, ``perturbations_per_eval`` = 4 groups, on an encoder-only
      forward returning the distance to the unoccluded embedding (batch 8);
  (c) modalens fp32 at the paper's embedding level (encoder only, BatchNorm folded,
      channels-last, batched occlusions, ALL computed once);
  (d) modalens bf16, and its agreement with fp32 (:func:`modalens.attribution.precision_agreement`);
  (e) modalens ``precision="auto"`` (bf16 with fp32 re-evaluation of what bf16 cannot resolve;
      bf16 forced on where the CPU lacks it) and its share of fp32 re-evaluations; with
      ``--run`` also (f) fp32 and (g) auto on the trained run's model on its test samples
      (same input size) with ``modalens attribute``'s defaults (loss level with the targets,
      train-mean fill), and whether auto's rankings equal fp32's there, and (h) bf16 alone
      on that model: the most any ``auto`` could reach on this machine. (At the loss level
      ``auto`` runs fp32: no bound holds there, see :mod:`modalens.attribution.autoprec`.)

It also times 2048x2048 fp32 matmuls in the same rounds (the reachable peak under the same
conditions) and reports the FLOP/s that (c) achieves on the forwards it executes (encoder
30.0 GFLOP per 256x256 input, full model 80.8 GFLOP). ``--profile`` prints the top
operators of one modalens batch (torch.profiler).
``--run RUN_DIR`` measures the bf16 agreement with a trained run's model on its test split.

    python benchmarks/occlusion_speed.py --rounds 4 --run /tmp/demo/run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch

from modalens.attribution import (
    OcclusionEngine,
    groups_from_spec,
    precision_agreement,
    summarize_scores,
)
from modalens.attribution.run import run_mean
from modalens.models import UNet
from modalens.training import load_run

ENC_GFLOP = 30.0
FULL_GFLOP = 80.8
GROUPS = {"s2": list(range(10)), "s1": [10, 11], "esa_wc": [12], "viirs": [13]}
ALL_CHANNELS = list(range(14))
#: the methods that run the trained run's model (``--run``)
TRAINED = ("(f)", "(g)", "(h)")


def make_data(n: int, size: int = 256, seed: int = 0) -> torch.Tensor:
    """Inputs shaped like normalised MapInWild crops (S2 reflectance, S1/VIIRS z-scores,
    ordinal land cover)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.empty(n, 14, size, size)
    x[:, :10] = torch.rand(n, 10, size, size, generator=g) * 0.4
    x[:, 10:12] = torch.randn(n, 2, size, size, generator=g)
    x[:, 12] = torch.randint(0, 11, (n, size, size), generator=g).float() / 10
    x[:, 13] = torch.randn(n, size, size, generator=g).abs()
    return x


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


def matmul_peak(dtype: torch.dtype, n: int = 2048, reps: int = 10) -> float:
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    a @ b
    best = math.inf
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def reference_loop(model: UNet, x: torch.Tensor) -> np.ndarray:
    """(a) one full forward per occlusion, batch size 1, embedding = bottleneck."""
    out = np.zeros((x.shape[0], len(GROUPS) + 1))
    with torch.no_grad():
        for i in range(x.shape[0]):
            xi = x[i : i + 1]
            feats = model.encode(xi)
            model.decode(feats)  # the reference runs the whole network
            full = feats[-1]
            for k, chans in enumerate([*GROUPS.values(), ALL_CHANNELS]):
                xo = xi.clone()
                xo[:, chans] = 0.0
                f = model.encode(xo)
                model.decode(f)
                out[i, k] = float((f[-1] - full).flatten().norm())
    return out


def captum_run(model: UNet, x: torch.Tensor, batch: int = 8) -> np.ndarray:
    """(b) Captum FeatureAblation on an encoder-only distance-to-reference forward."""
    from captum.attr import FeatureAblation

    mask = torch.zeros(1, 14, 1, 1, dtype=torch.long)
    for k, chans in enumerate(GROUPS.values()):
        mask[:, chans] = k
    outs = []
    with torch.no_grad():
        for s in range(0, x.shape[0], batch):
            xb = x[s : s + batch]
            ref = model.encode(xb)[-1]

            def dist(inp: torch.Tensor, ref: torch.Tensor = ref) -> torch.Tensor:
                r = ref.repeat(inp.shape[0] // ref.shape[0], 1, 1, 1)
                return (model.encode(inp)[-1] - r).flatten(1).norm(dim=1)

            attr = FeatureAblation(dist).attribute(
                xb,
                baselines=0.0,
                feature_mask=mask.expand(1, 14, *xb.shape[2:]),
                perturbations_per_eval=len(GROUPS),
            )
            outs.append(-attr[:, [c[0] for c in GROUPS.values()], 0, 0].numpy())
    return np.concatenate(outs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--samples", type=int, default=16, help="distinct input samples")
    ap.add_argument("--batch", type=int, default=8, help="samples per unit of (b), (c), (d)")
    ap.add_argument("--samples-a", type=int, default=1, help="samples per unit of (a)")
    ap.add_argument("--matmuls", type=int, default=20, help="2048^2 matmuls per round")
    ap.add_argument("--agree-samples", type=int, default=16)
    ap.add_argument("--agree-strategies", default="zeros,ones,uniform,gaussian")
    ap.add_argument("--run", default=None, help="trained run folder for the bf16 agreement")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--quick", action="store_true", help="1 round, 8 samples, 4 agreement samples")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.samples, args.matmuls, args.agree_samples = 1, 8, 5, 4

    os.environ.setdefault("MODALENS_NATIVE_BF16", "1")  # (e): the bf16 path on any CPU
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = UNet(14).eval()
    x = make_data(max(args.samples, args.samples_a))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {args.threads} threads, load average {load:.2f}")

    peak32 = matmul_peak(torch.float32)
    peak16 = matmul_peak(torch.bfloat16)
    print(f"2048^2 matmul (best of 10): fp32 {peak32:.0f} GFLOP/s, bf16 {peak16:.0f} GFLOP/s")

    # Methods run in small units, interleaved and rotated every round, and each method's
    # rate is its total samples over its total time: load from other processes on the
    # machine then hurts every method alike. Engines persist across units, as over a dataset.
    # (c)-(e) at the paper's embedding level, as (a) and (b) (the default level would run the
    # whole model on these target-less inputs)
    paper = {"strategies": "zeros", "levels": "embedding"}
    eng32 = OcclusionEngine(model, GROUPS, precision="fp32", **paper)
    eng16 = OcclusionEngine(model, GROUPS, precision="bf16", **paper)
    engauto = OcclusionEngine(model, GROUPS, precision="auto", **paper)
    engines = {"(c)": eng32, "(d)": eng16, "(e)": engauto}
    trained = None
    if args.run:  # (f), (g): the trained model on its own test samples
        run = load_run(args.run)
        tgroups = groups_from_spec(run.spec, "modalities")
        tds = run.dataset("test")
        titems = [tds[i] for i in range(min(len(tds), args.samples))]
        tx = torch.stack([it["image"] * it["valid"][None] for it in titems])
        ty = torch.stack([it["target"] for it in titems])
        tv = torch.stack([it["valid"] for it in titems])
        # modalens attribute's defaults: the auto level (loss, with targets), train-mean fill
        tkw = {"strategies": "mean", "mean": run_mean(run)}
        engines["(f)"] = OcclusionEngine(run.model, tgroups, **tkw)
        engines["(g)"] = OcclusionEngine(run.model, tgroups, precision="auto", **tkw)
        engines["(h)"] = OcclusionEngine(run.model, tgroups, precision="bf16", **tkw)
        trained = (tx, ty, tv, [it["id"] for it in titems])
    mm = torch.randn(2048, 2048)
    totals: dict[str, dict[str, float]] = {}
    outputs: dict[str, list[Any]] = {k: [] for k in ["(a)", "(b)", *engines]}
    bs = args.batch

    def unit(name: str, r: int) -> None:
        xa = x[(r * args.samples_a) % len(x) :][: args.samples_a]
        xb = x[(r * bs) % len(x) :][:bs]
        if name == "matmul":
            w, c, _ = timed(lambda: [mm @ mm for _ in range(args.matmuls)])
            n, gflop = args.matmuls, args.matmuls * 2 * 2048**3 / 1e9
        elif name == "(a)":
            w, c, out = timed(lambda: reference_loop(model, xa))
            n, gflop = len(xa), len(xa) * 6 * FULL_GFLOP
            outputs[name].append((xa, out))
        elif name == "(b)":
            w, c, out = timed(lambda: captum_run(model, xb, bs))
            n, gflop = len(xb), len(xb) * 6 * ENC_GFLOP
            outputs[name].append((xb, out))
        else:
            eng = engines[name]
            if name in TRAINED:
                assert trained is not None
                tx, ty, tv, tids = trained
                start = (r * bs) % len(tx)
                xb = {"image": tx[start:][:bs], "target": ty[start:][:bs],
                      "valid": tv[start:][:bs], "id": tids[start:][:bs]}  # fmt: skip
            before = eng.forwards + (eng.fast.forwards if eng.fast else 0)
            w, c, out = timed(lambda: eng.score_batch(xb))
            after = eng.forwards + (eng.fast.forwards if eng.fast else 0)
            n = len(xb["id"]) if isinstance(xb, dict) else len(xb)
            # GFLOP of the paper's U-Net; TRAINED run the trained run's (smaller) model
            gflop = (after - before) * ENC_GFLOP if name not in TRAINED else 0.0
            outputs[name].append((xb, out))
        t = totals.setdefault(name, {"n": 0, "wall": 0.0, "cpu": 0.0, "gflop": 0.0})
        t["n"] += n
        t["wall"] += w
        t["cpu"] += c
        t["gflop"] += gflop

    # warm-up (first-call set-up of every path), not timed
    for name, eng in engines.items():
        warm = x[:2] if trained is None or name not in TRAINED else trained[0][:2]
        eng.score_batch(warm)
    captum_run(model, x[:2], 2)
    order = ["(a)", "(b)", *engines, "matmul"]
    for r in range(args.rounds):
        for name in order[r % len(order) :] + order[: r % len(order)]:
            unit(name, r)
        print(f"round {r + 1}/{args.rounds} done (load {os.getloadavg()[0]:.2f})", flush=True)
    mm_avg = totals["matmul"]["gflop"] / totals["matmul"]["wall"]
    labels = {
        "(a)": "(a) reference loop",
        "(b)": "(b) captum FeatureAblation",
        "(c)": "(c) modalens fp32",
        "(d)": "(d) modalens bf16",
        "(e)": "(e) modalens auto",
        "(f)": "(f) trained fp32",
        "(g)": "(g) trained auto",
        "(h)": "(h) trained bf16",
    }
    labels = {k: v for k, v in labels.items() if k in engines or k in ("(a)", "(b)")}
    best = {labels[k]: totals[k] for k in labels}
    peak_ref = mm_avg

    # correctness cross-check: modalens fp32 against (a) and (b) on the same samples
    check = OcclusionEngine(model, GROUPS, **paper)
    xa, ref = outputs["(a)"][0]
    ours = check.score_batch(xa)
    ours_a = ours.pivot(index="sample_id", columns="group", values="value")
    ours_a = ours_a.loc[[str(i) for i in range(len(xa))], [*GROUPS, "ALL"]].to_numpy()
    err_a = float(np.max(np.abs(ours_a - ref) / np.abs(ref)))
    xb, cap = outputs["(b)"][0]
    ours = check.score_batch(xb)
    ours_b = ours.pivot(index="sample_id", columns="group", values="value")
    ours_b = ours_b.loc[[str(i) for i in range(len(xb))], list(GROUPS)].to_numpy()
    err_b = float(np.max(np.abs(ours_b - cap) / np.abs(cap)))

    base_a = best["(a) reference loop"]["n"] / best["(a) reference loop"]["wall"]
    base_b = best["(b) captum FeatureAblation"]["n"] / best["(b) captum FeatureAblation"]["wall"]
    rows = []
    print()
    hdr = f"{'method':28s} {'samples/s':>10s} {'vs (a)':>7s} {'vs (b)':>7s} {'GFLOP/s':>8s}"
    print(hdr + f" {'% mm fp32':>9s} {'cpu-s/sample':>12s}")
    for name, b in best.items():
        sps = b["n"] / b["wall"]
        gfs = b["gflop"] / b["wall"]
        row = {
            "method": name,
            "samples_per_s": sps,
            "vs_a": sps / base_a,
            "vs_b": sps / base_b,
            "gflop_per_s": gfs,
            "pct_matmul_fp32": 100 * gfs / peak_ref,
            "cpu_s_per_sample": b["cpu"] / b["n"],
        }
        rows.append(row)
        print(
            f"{name:28s} {sps:10.3f} {row['vs_a']:7.2f} {row['vs_b']:7.2f} {gfs:8.0f} "
            f"{row['pct_matmul_fp32']:9.0f} {row['cpu_s_per_sample']:12.2f}"
        )
    print(
        f"GFLOP/s counts the forwards each method executes; % mm fp32 is against the 2048^2 "
        f"fp32 matmul timed in the same rounds ({mm_avg:.0f} GFLOP/s; best of 10 alone: "
        f"{peak32:.0f})"
    )
    print(f"fp32 distances vs (a): max rel diff {err_a:.1e}; vs (b): {err_b:.1e}")
    auto_rows = {}
    for base, auto in (("(c)", "(e)"), ("(f)", "(g)")):
        if auto not in engines:
            continue
        rep = engines[auto].precision_report()
        fa = pd.concat([o for _, o in outputs[base]])
        fb = pd.concat([o for _, o in outputs[auto]])
        sa, sb = summarize_scores(fa, n_boot=0), summarize_scores(fb, n_boot=0)
        keys = ["method", "level", "distance", "strategy", "group"]
        sm = sa.merge(sb, on=keys)
        same = bool((sm["rank_x"].fillna(-1) == sm["rank_y"].fillna(-1)).all())
        ratio = (totals[auto]["n"] / totals[auto]["wall"]) / (
            totals[base]["n"] / totals[base]["wall"]
        )
        auto_rows[auto] = {
            "fp32_share": rep.get("fp32_share"),
            "vs_fp32": ratio,
            "same_ranks": same,
        }
        print(
            f"{labels[auto]}: {ratio:.2f}x {labels[base]}, fp32 share "
            f"{100 * rep.get('fp32_share', float('nan')):.1f} % of {rep.get('occlusions', 0)} "
            f"occlusions ({rep.get('bf16', 0)} evaluated in bf16), "
            f"dataset ranking equal to fp32: {same}"
        )

    if "(h)" in engines:  # what bf16 alone gives: the ceiling of any auto on this machine
        h, f = (totals[k]["n"] / totals[k]["wall"] for k in ("(h)", "(f)"))
        print(f"(h) trained bf16: {h / f:.2f}x (f) trained fp32 (the ceiling of auto here)")
        auto_rows["(h)"] = {"vs_fp32": h / f}

    # bf16 agreement
    if args.run:
        run = load_run(args.run)
        amodel, groups = run.model, groups_from_spec(run.spec, "modalities")
        ds = run.dataset("test")
        n = min(args.agree_samples, len(ds))
        items = [ds[i] for i in range(n)]
        abatches = [
            {
                "image": torch.stack([it["image"] * it["valid"][None] for it in items[s : s + 8]]),
                "id": [it["id"] for it in items[s : s + 8]],
            }
            for s in range(0, n, 8)
        ]
        source = f"run {args.run}, {n} test samples"
    else:
        amodel, groups = model, GROUPS
        xa = make_data(args.agree_samples, seed=1)
        abatches = [xa[s : s + 8] for s in range(0, len(xa), 8)]
        source = f"untrained UNet(14), {len(xa)} synthetic samples"
    agree = precision_agreement(amodel, abatches, groups, strategies=args.agree_strategies)
    print(
        f"bf16 vs fp32 ({source}, strategies {args.agree_strategies}): max rel error "
        f"{agree['max_rel_error']:.3f}, median {agree['median_rel_error']:.4f}, dataset-level "
        f"rank agreement {agree['dataset_rank_agreement']:.2f}, per-sample top-1 agreement "
        f"{agree['sample_top1_agreement']:.2f}"
    )

    c = next(r for r in rows if r["method"].startswith("(c)"))
    d = next(r for r in rows if r["method"].startswith("(d)"))
    targets = {
        "(c) >= 3.5x (a)": c["vs_a"] >= 3.5,
        "(c) >= 1.5x (b)": c["vs_b"] >= 1.5,
        "(c) >= 60% of matmul fp32": c["pct_matmul_fp32"] >= 60,
        "(d) >= 8x (a)": d["vs_a"] >= 8,
    }
    if "(g)" in auto_rows:
        g = auto_rows["(g)"]
        targets["(g) >= 2x (f), same ranks"] = g["vs_fp32"] >= 2 and g["same_ranks"]
        targets["(g) >= 0.95x (f) (never slower)"] = g["vs_fp32"] >= 0.95
    print("targets: " + ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in targets.items()))

    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        for prec in ("fp32", "bf16"):
            eng = OcclusionEngine(model, GROUPS, precision=prec)
            eng.score_batch(x[:2])
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                eng.score_batch(x[:8])
            print(f"\nprofile, modalens {prec}, one batch of 8:")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))

    if args.json:
        out = {
            "matmul_fp32_best": peak32,
            "matmul_fp32_in_rounds": mm_avg,
            "matmul_bf16": peak16,
            "rows": rows,
            "targets": targets,
            "bf16_agreement": {k: v for k, v in agree.items() if not hasattr(v, "shape")},
            "auto": auto_rows,
            "load_average": load,
        }
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
