"""Overhead of ``modalens ablate`` over training and testing the same runs by hand.

On a synthetic dataset, times the whole ablation (:func:`modalens.validation.ablate`: 9 runs for
the 4 MapInWild modalities, plus its bookkeeping -- config checks, per-run inference timing,
parameter counts, Table I) against 9 separate :func:`modalens.training.fit` +
:func:`modalens.training.evaluate` calls of the same run configs, interleaved in one process
(A B, B A, ... so that drifts of the machine hit both alike), each repetition in fresh folders,
and prints wall and process CPU times and the overhead ratio of the medians::

    python benchmarks/ablation_overhead.py [--samples 24] [--size 64] [--epochs 3]
        [--width 16] [--depth 3] [--repeats 3] [--threads 1] [--timing-samples N]
        [--json out.json]

It also times the only work the ablation adds per run -- :func:`modalens.validation.measure_run`
(checkpoint load, the timed forward passes over the test split, parameter count) -- on the
separate runs' folders, an estimate of the overhead that other load on the machine disturbs
less than the difference of two wall times. One torch thread by default: with several threads,
other processes on a busy machine stall the thread pool and the wall times swing by 2x.

The target is an overhead below 5 %. Absolute times depend on the machine and its load; only
the ratios within one run of this script mean something. The bookkeeping is a fixed cost per
run (reloading the best checkpoint, one more pass over the test split), so the ratio shrinks as
runs grow: at tiny sizes (runs of well under a second) it is far above 5 %.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from modalens.data import synthetic
from modalens.training import evaluate, fit
from modalens.validation import ablate, measure_run
from modalens.validation.settings import config_modalities, plan_settings, run_config


def base_config(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "name": "bench",
        "data": {"preset": "mapinwild", "root": str(root)},
        "model": {"base_width": args.width, "depth": args.depth},
        "train": {
            "epochs": args.epochs,
            "batch_size": 4,
            "lr": 1e-3,
            "crop_size": min(64, args.size),
            "patience": 10,
        },
    }


def time_ablation(
    cfg: dict[str, Any], out: Path, timing_samples: int | None
) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    ablate(cfg, out, seeds=(0,), progress=False, timing_samples=timing_samples)
    return time.perf_counter() - wall, time.process_time() - cpu


def time_separate(cfg: dict[str, Any], out: Path) -> tuple[float, float]:
    settings = plan_settings(config_modalities(cfg))
    wall, cpu = time.perf_counter(), time.process_time()
    for setting in settings:
        run = fit(run_config(cfg, setting, 0), out=out / setting.run_name(0), progress=False)
        evaluate(run)
    return time.perf_counter() - wall, time.process_time() - cpu


def time_bookkeeping(out: Path, timing_samples: int | None) -> float:
    start = time.perf_counter()
    for run in sorted(out.iterdir()):
        measure_run(run, limit=timing_samples)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=24)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    p.add_argument("--timing-samples", type=int, default=None)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="ablation-bench-") as tmp:
        base = Path(tmp)
        root = synthetic.generate_synthetic(
            base / "data", samples=args.samples, size=args.size, seed=0, progress=False
        )
        cfg = base_config(root, args)
        n_runs = len(plan_settings(config_modalities(cfg)))
        times: dict[str, list[tuple[float, float]]] = {"ablate": [], "separate": []}
        bookkeeping: list[float] = []
        for rep in range(args.repeats):
            order = ("ablate", "separate") if rep % 2 == 0 else ("separate", "ablate")
            for which in order:
                out = base / f"{which}-{rep}"
                if which == "ablate":
                    wall, cpu = time_ablation(cfg, out, args.timing_samples)
                else:
                    wall, cpu = time_separate(cfg, out)
                    bookkeeping.append(time_bookkeeping(out, args.timing_samples))
                times[which].append((wall, cpu))
                print(f"repeat {rep}: {which:<8} wall {wall:7.2f} s  cpu {cpu:7.2f} s", flush=True)

    def median(which: str, i: int) -> float:
        return statistics.median(t[i] for t in times[which])

    a, s = median("ablate", 0), median("separate", 0)
    a_cpu, s_cpu = median("ablate", 1), median("separate", 1)
    book = statistics.median(bookkeeping)
    result = {
        "machine": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "samples": args.samples,
        "size": args.size,
        "epochs": args.epochs,
        "width": args.width,
        "depth": args.depth,
        "runs": n_runs,
        "repeats": args.repeats,
        "ablate_wall_cpu_s": times["ablate"],
        "separate_wall_cpu_s": times["separate"],
        "bookkeeping_s": bookkeeping,
        "overhead_wall": a / s - 1.0,
        "overhead_cpu": a_cpu / s_cpu - 1.0,
        "overhead_bookkeeping": book / s,
    }
    print(
        f"{n_runs} runs, {args.samples} scenes of {args.size} px, {args.epochs} epochs, "
        f"width {args.width}, depth {args.depth}, {torch.get_num_threads()} torch thread(s)"
    )
    print(f"separate fit + test per run: {s / n_runs:.2f} s wall")
    print(f"median of {args.repeats}:       wall      cpu")
    print(f"ablate               {a:8.2f} s {a_cpu:8.2f} s")
    print(f"separate fit + test  {s:8.2f} s {s_cpu:8.2f} s")
    print(
        f"overhead: wall {100 * (a / s - 1):+.1f} %, cpu {100 * (a_cpu / s_cpu - 1):+.1f} %, "
        f"measured bookkeeping {book:.2f} s = {100 * book / s:.1f} % (target < 5 %)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
