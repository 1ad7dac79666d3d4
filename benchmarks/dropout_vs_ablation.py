"""Table I from one training: one modality-dropout model's subsets against ``ablate``'s 2N+1 runs.

For the demo's data (``modalens demo``'s synthetic MapInWild scenes, trained with the demo's
config) and the faithfulness benchmark's worlds, and per seed, runs
:func:`modalens.validation.dropout_vs_ablation`: the whole ablation (all, single, leave-one-out
runs) and the same all-modality model trained with ``train.modality_dropout``, whose every
subset is scored (``modalens subsets``). Prints per world and seed

- Spearman rho of the single-modality rows and of the leave-one-out deviations (dropout model
  vs retraining), and of the performance Shapley values vs the retrained leave-one-out
  deviations; the retrained leave-one-out ranking of one seed against the next (the noise
  floor: what retraining itself reproduces);
- the mean absolute difference of those rows' metric, and how much worse the dropout model's
  all-modality metric is than the ablation's all-modality run (same config, no dropout);
- compute: training seconds of the ablation (epochs x measured seconds per epoch, summed over
  its runs) against the dropout model's training plus its 2^N - 1 subset evaluations, and the
  wall time of both stages of this script,

and the targets: rho >= 0.9 in every seed, the all-modality metric within 5 %, at most 1/4 of
the ablation's compute. Everything runs in one process, one stage after the other (ablation
first, then the dropout model), on one torch thread by default::

    python benchmarks/dropout_vs_ablation.py [--worlds demo,planted,correlated,interaction,scales]
        [--seeds 0,1,2] [--p 0.5] [--threads 1] [--out FOLDER] [--json out.json]

A rerun with the same ``--out`` reuses finished runs (its wall times then measure nothing).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml

from modalens.data.synthetic import generate_synthetic
from modalens.demo import DEMO_IMPORTANCE
from modalens.validation import ablate
from modalens.validation.dropout_check import DEFAULT_DROPOUT, dropout_vs_ablation
from modalens.validation.faithfulness import (
    DEMO_CONFIG,
    FaithfulnessSettings,
    world_config,
    world_data,
)

COLUMNS = [
    "world", "seed", "spearman_single", "spearman_loo", "spearman_shapley_loo",
    "spearman_loo_seeds", "mean_abs_diff", "all_worse_rel", "compute_ratio",
]  # fmt: skip


def demo_config(root: Path, size: int) -> dict:
    """The demo's run config (``configs/demo.yaml``) on the demo's data in ``root`` (scenes of
    ``size`` px: crops of at most that)."""
    cfg = yaml.safe_load(DEMO_CONFIG.read_text())
    cfg["data"] = {"preset": "mapinwild", "root": str(root)}
    cfg["train"]["crop_size"] = min(64, size)
    return cfg


def one(config: dict, out: Path, seeds: tuple[int, ...], dropout: dict) -> dict[str, Any]:
    """Ablation, then the dropout model, each timed; the comparison's per-seed table."""
    start = time.perf_counter()
    ablate(config, out / "ablation", seeds, progress=True)
    ablation_wall = time.perf_counter() - start
    start = time.perf_counter()
    result = dropout_vs_ablation(config, out, seeds, dropout, progress=True)
    dropout_wall = time.perf_counter() - start
    return {"table": result.table, "sentences": result.sentences,
            "ablation_wall_s": ablation_wall, "dropout_wall_s": dropout_wall}  # fmt: skip


def worlds_run(args: argparse.Namespace, out: Path, dropout: dict) -> list[dict[str, Any]]:
    results = []
    for world in args.worlds.split(","):
        if world == "demo":
            root = out / "demo" / "data"
            if not (root / "metadata.json").is_file():
                generate_synthetic(root, samples=args.demo_samples, size=args.demo_size, seed=0,
                                   importance=DEMO_IMPORTANCE, progress=False)  # fmt: skip
            cfg = demo_config(root, args.demo_size)
            res = one(cfg, out / "demo", args.seeds, dropout)
            results.append({"world": world, **res})
            continue
        s = FaithfulnessSettings(samples=args.samples, size=args.size, epochs=args.epochs).record()
        for seed in args.seeds:  # each seed its own data and config, as in bench faithfulness
            data = world_data(world, out / world / f"seed{seed}" / "data", seed, s)
            cfg = world_config(data.spec, s)
            res = one(cfg, out / world / f"seed{seed}", (seed,), dropout)
            results.append({"world": world, **res})
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worlds", default="demo,planted,correlated,interaction,scales")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--p", type=float, default=DEFAULT_DROPOUT["p"], help="dropout probability")
    p.add_argument("--samples", type=int, default=120, help="scenes per synthetic world")
    p.add_argument("--size", type=int, default=32, help="scene size of the worlds")
    p.add_argument("--epochs", type=int, default=15, help="epochs in the worlds")
    p.add_argument("--demo-samples", type=int, default=60)
    p.add_argument("--demo-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    p.add_argument("--out", help="working folder (default: a temporary one)")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    args.seeds = tuple(int(s) for s in args.seeds.split(","))
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    dropout = {**DEFAULT_DROPOUT, "p": args.p}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp)
        results = worlds_run(args, out, dropout)
    tables = [r["table"].assign(world=r["world"]) for r in results]
    table = pd.concat(tables, ignore_index=True)[COLUMNS]
    abl = sum(r["ablation_wall_s"] for r in results)
    drop = sum(r["dropout_wall_s"] for r in results)
    print(f"\n{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch "
          f"thread(s), dropout {dropout}")  # fmt: skip
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"wall: ablation {abl:.0f} s, dropout model + subsets {drop:.0f} s "
          f"(ratio {drop / abl:.3f})")  # fmt: skip
    for r in results:
        print(f"{r['world']}: " + " ".join(r["sentences"]))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "table": table.to_dict(orient="records"), "ablation_wall_s": abl,
            "dropout_wall_s": drop, "threads": torch.get_num_threads(), "dropout": dropout,
        }, indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
