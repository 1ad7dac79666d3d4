"""Sharded attribution: 1 process x 2 threads against 2 processes x 1 thread, side by side.

Builds a run of the paper's U-Net (width 64, depth 4, 14 channels; one short epoch of training
on synthetic MapInWild-layout scenes: the weights do not change the cost) and attributes its
train split (whole scenes of ``--size`` px, strategy ``zeros``, 4 modalities + ALL, fp32)
with ``modalens attribute`` through the same code path as the CLI, once per configuration in
fresh processes, the configurations interleaved over ``--rounds`` rounds:

  (a) 1 process, ``OMP_NUM_THREADS=2`` (``--devices 1``: no Fabric);
  (b) 2 processes of 1 thread each (``--devices 2``: Fabric's launcher, gloo; the thread
      count is the default split of the 2 cores).

Per configuration it reports the attribution rate (samples/s: each rank's samples after its
first batch over the time between its first and last batch, summed over ranks -- start-up and
model preparation excluded), the end-to-end wall time (process start to exit, imports and
rank 1's start included) and the merge time (rank 0: last batch of any rank to the end of
``attribute_run``: barrier, ``scores.parquet``, summary, ``source.json``, figure). It checks
that (a) and (b) wrote the same ``scores.parquet``.

    python benchmarks/attribution_scaling.py               # 256x256, 40 scenes, 2 rounds
    python benchmarks/attribution_scaling.py --quick       # 128x128, 24 scenes, 1 round
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from modalens.threads import DEFAULT_MARK, configure_threads

configure_threads()  # as the command does, before torch loads (the workers attribute in-process)

import pandas as pd  # noqa: E402

from modalens.attribution import attribute_run  # noqa: E402
from modalens.data import synthetic  # noqa: E402
from modalens.training import fit  # noqa: E402

CONFIGS = {"1 process x 2 threads": (1, "2"), "2 processes x 1 thread": (2, None)}


def make_run(base: Path, samples: int, size: int) -> Path:
    """A run of the paper's U-Net on synthetic scenes (one short epoch)."""
    root = synthetic.generate_synthetic(
        base / "data", samples=samples, size=size, seed=0, progress=False
    )
    cfg = {
        "name": "scaling",
        "data": {"preset": "mapinwild", "root": str(root)},
        "model": {"base_width": 64, "depth": 4},
        "train": {"epochs": 1, "batch_size": 8, "crop_size": 32, "eval_crop_size": 0},
    }
    return fit(cfg, out=base / "run", progress=False)


def worker(args: argparse.Namespace) -> None:
    """One configuration (every rank runs this; Fabric re-runs the command for rank 1)."""
    stamps: list[tuple[float, int]] = []
    t0 = time.time()
    attribute_run(
        args.run,
        "train",
        out=args.out,
        batch_size=args.batch_size,
        strategies=["zeros"],
        chunk_size=args.chunk_size,
        progress=False,
        devices=args.devices,
        on_batch=lambda _i, rows: stamps.append((time.time(), rows["sample_id"].nunique())),
    )
    rank = int(os.environ.get("LOCAL_RANK", "0")) if args.devices > 1 else 0
    record = {"rank": rank, "start": t0, "end": time.time(), "batches": stamps}
    Path(f"{args.out}.rank{rank}.json").write_text(json.dumps(record))


def measure(
    run: Path, out: Path, devices: int, threads: str | None, batch: int, chunk: int | None
) -> dict:
    """Run one configuration in fresh processes and read its timings."""
    shutil.rmtree(out, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k != DEFAULT_MARK}
    env.pop("OMP_NUM_THREADS", None)
    if threads is not None:
        env["OMP_NUM_THREADS"] = threads
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--run", str(run)]
    cmd += ["--out", str(out), "--devices", str(devices), "--batch-size", str(batch)]
    cmd += ["--chunk-size", str(chunk)] if chunk else []
    t = time.time()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    wall = time.time() - t
    ranks = [json.loads(Path(f"{out}.rank{r}.json").read_text()) for r in range(devices)]
    rate, samples = 0.0, 0
    for r in ranks:
        b = r["batches"]
        samples += sum(n for _, n in b)
        if len(b) < 2:
            raise SystemExit("a rank scored fewer than 2 batches: raise --samples")
        rate += sum(n for _, n in b[1:]) / (b[-1][0] - b[0][0])
    last = max(r["batches"][-1][0] for r in ranks if r["batches"])
    merge = ranks[0]["end"] - last
    return {"rate": rate, "wall": wall, "merge": merge, "samples": samples}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="128x128, 24 scenes, batch 2, 1 round")
    p.add_argument("--size", type=int, help="scene side in px (default 256; quick 128)")
    p.add_argument("--samples", type=int, help="synthetic scenes (default 40; quick 24)")
    p.add_argument("--rounds", type=int, help="rounds (default 2; quick 1)")
    p.add_argument("--batch-size", type=int, help="samples per batch (default 4; quick 2)")
    p.add_argument("--chunk-size", type=int, help="inputs per forward (default: cache-sized)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--run", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--devices", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    size = args.size or (128 if args.quick else 256)
    samples = args.samples or (24 if args.quick else 40)
    args.batch_size = args.batch_size or (2 if args.quick else 4)
    rounds = args.rounds or (1 if args.quick else 2)
    base = Path(tempfile.mkdtemp(prefix="attribution-scaling-"))
    try:
        run = make_run(base, samples, size)
        results: dict[str, list[dict]] = {name: [] for name in CONFIGS}
        for k in range(rounds):
            order = list(CONFIGS) if k % 2 == 0 else list(CONFIGS)[::-1]
            for name in order:
                devices, threads = CONFIGS[name]
                out = base / f"attr-{devices}"
                results[name].append(
                    measure(run, out, devices, threads, args.batch_size, args.chunk_size)
                )
        same = pd.read_parquet(base / "attr-1" / "scores.parquet").equals(
            pd.read_parquet(base / "attr-2" / "scores.parquet")
        )
        n = results[list(CONFIGS)[0]][0]["samples"]
        print(
            f"\nSharded attribution, paper U-Net (width 64, depth 4), {size}x{size} scenes, "
            f"{n} samples, batch {args.batch_size}, chunk {args.chunk_size or 'cache-sized'}, "
            f"zeros, fp32, {rounds} round(s)\n"
        )
        print("| configuration | samples/s | end-to-end wall (s) | merge (s) |")
        print("|---|---|---|---|")
        rates = {}
        for name, rs in results.items():
            rates[name] = sum(r["rate"] for r in rs) / len(rs)
            wall = sum(r["wall"] for r in rs) / len(rs)
            merge = sum(r["merge"] for r in rs) / len(rs)
            print(f"| {name} | {rates[name]:.3f} | {wall:.1f} | {merge:.3f} |")
        a, b = (rates[name] for name in CONFIGS)
        print(f"\nratio (2 processes x 1 thread) / (1 process x 2 threads): {b / a:.3f}")
        print(f"same scores.parquet: {same}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
