"""Training throughput on CPU: 1 process x 2 threads against 2 processes x 1 thread (DDP).

Both set-ups train the same run config (the same global batch: under DDP each process takes
half of every batch) through the CLI in a subprocess, interleaved round by round (A B, B A, ...)
so that drifts of the machine hit both alike::

    python benchmarks/training_scaling.py [--quick] [--samples 40] [--size 128] [--crop 64]
        [--width 16] [--depth 3] [--batch 8] [--epochs 4] [--rounds 2] [--json out.json]

Training samples/s = train items per epoch / the epoch's training seconds (``metrics.csv``,
rank 0, validation excluded), the median over the epochs after the first (warm-up) and over the
rounds; "wall s" is the whole command (start-up, statistics, process launch, validation). The
ratio is 2 processes over 1 process. Only ratios within one run of this script mean
something; absolute figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from modalens.data import sample_ids, synthetic
from modalens.training import load_config, spec_from_config

SRC = Path(__file__).resolve().parents[1] / "src"
#: (label, processes, threads per process)
SETUPS = [("1 process x 2 threads", 1, 2), ("2 processes x 1 thread", 2, 1)]


def run_once(config: Path, out: Path, processes: int, threads: int) -> tuple[float, float]:
    """Train once; ``(median epoch training seconds after the first, wall seconds)``."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "modalens.cli", "-q", "fit", "--config", str(config),
           "--out", str(out), "--devices", str(processes)]
    if processes > 1:
        cmd += ["--strategy", "ddp"]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    seconds = pd.read_csv(out / "metrics.csv")["seconds"].tolist()
    return statistics.median(seconds[1:] or seconds), wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small run (16 samples of 64 px)")
    p.add_argument("--samples", type=int, default=40)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--batch", type=int, default=8, help="global batch (even)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    if args.quick:
        args.samples, args.size, args.crop, args.width, args.epochs, args.rounds = (
            16, 64, 32, 8, 3, 1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        root = synthetic.generate_synthetic(tmp_path / "data", samples=args.samples, size=args.size,
                                  seed=0, progress=False)
        cfg = {
            "name": "bench",
            "data": {"preset": "mapinwild", "root": str(root)},
            "model": {"base_width": args.width, "depth": args.depth},
            "train": {"epochs": args.epochs, "batch_size": args.batch, "lr": 1e-3,
                      "crop_size": args.crop, "patience": args.epochs,
                      "augment": {"hflip": 0.5, "vflip": 0.5}},
        }
        config = tmp_path / "bench.yaml"
        config.write_text(yaml.safe_dump(cfg))
        n_train = len(sample_ids(spec_from_config(load_config(config)))["train"])
        times: dict[str, list[tuple[float, float]]] = {s[0]: [] for s in SETUPS}
        for r in range(args.rounds):
            order = SETUPS if r % 2 == 0 else SETUPS[::-1]
            for label, procs, threads in order:
                out = tmp_path / f"run-{r}-{procs}"
                times[label].append(run_once(config, out, procs, threads))
    rows: list[dict[str, Any]] = []
    for label, procs, threads in SETUPS:
        epoch = statistics.median(t[0] for t in times[label])
        wall = statistics.median(t[1] for t in times[label])
        rows.append({"setup": label, "processes": procs, "threads": threads,
                     "epoch_s": epoch, "samples_per_s": n_train / epoch, "wall_s": wall})
    base = rows[0]["samples_per_s"]
    print(f"\n{n_train} train samples of {args.crop} px per epoch, global batch {args.batch}, "
          f"U-Net width {args.width} depth {args.depth}, {args.epochs} epochs x "
          f"{args.rounds} rounds\n")
    print("| set-up | epoch s | train samples/s | ratio to 1 x 2 | wall s |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['setup']} | {row['epoch_s']:.3f} | {row['samples_per_s']:.1f} | "
              f"{row['samples_per_s'] / base:.2f} | {row['wall_s']:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
