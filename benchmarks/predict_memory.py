"""Peak memory of whole-scene prediction: it must grow with the output raster only.

Writes one synthetic MapInWild-layout scene per size (default 1920 and 3840 px, the paper's
scene size and 4x its area), trains nothing (a randomly initialised small run is enough for
memory) and runs, each in a fresh subprocess so peaks do not mix:

- ``sliding_window`` alone (tiles read through the data layer, blended into [1, H, W]),
- ``training.predict`` (the same plus writing the GeoTIFF),

reporting peak RSS (VmHWM, reset after loading) minus the process's baseline after imports
and model load, next to the size of the float32 output raster::

    python benchmarks/predict_memory.py [--sizes 1920 3840] [--tile 256] [--overlap 64]
        [--width 16] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
from pathlib import Path
mode, run_dir, root, sid, tile, overlap = sys.argv[1:7]
tile, overlap = int(tile), int(overlap)
import numpy as np, torch
from modalens.training import load_run, make_tile_fn, predict, InputReader
from modalens.data import SampleReader
from modalens.training.tiling import sliding_window

def status_mib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024

run = load_run(run_dir, data_root=root)
reader = InputReader(SampleReader(run.spec))
reader.grid(sid)
# warm up allocator and kernels on one tile, then measure from here
fn = make_tile_fn(run.module)
with torch.inference_mode():
    fn(torch.zeros(4, run.spec.n_channels, tile, tile))
base = status_mib("VmRSS:")
with open("/proc/self/clear_refs", "w") as f:  # reset the peak (VmHWM) to the current RSS
    f.write("5")
t0 = time.perf_counter()
if mode == "sliding_window":
    out = sliding_window(fn, reader, sid, tile=tile, overlap=overlap, out_channels=1,
                         batch_size=4, return_valid=True)
    shape = out[0].shape
else:
    paths = predict(run_dir, data_root=root, ids=[sid], out_dir=Path(run_dir) / "bench_pred",
                    tile=tile, overlap=overlap, batch_size=4)
    shape = None
dt = time.perf_counter() - t0
peak = status_mib("VmHWM:")
print(json.dumps({"base_mib": base, "peak_mib": peak, "seconds": dt}))
"""


def make_data(work: Path, sizes: list[int], width: int, tile: int) -> tuple[Path, dict[int, str]]:
    """One synthetic dataset per size (3 scenes: train/val/test) and a 1-epoch tiny run."""
    from modalens.data import synthetic
    from modalens.training import fit

    roots = {}
    for size in sizes:
        root = work / f"data{size}"
        if not (root / "metadata.json").exists():
            t0 = time.perf_counter()
            synthetic.generate_synthetic(root, samples=3, size=size, seed=0, progress=False)
            print(
                f"  wrote 3 synthetic scenes of {size}x{size} in {time.perf_counter() - t0:.0f} s"
            )
        roots[size] = root
    run_dir = work / "run"
    if not (run_dir / "checkpoints" / "best.ckpt").exists():
        small = min(sizes)
        cfg = {
            "data": {"preset": "mapinwild", "root": str(roots[small])},
            "model": {"base_width": width, "depth": 4},
            "train": {
                "epochs": 1,
                "batch_size": 1,
                "crop_size": tile,
                "limit_train_batches": 1,
                "limit_val_batches": 1,
            },
        }
        fit(cfg, out=run_dir, progress=False)
    return run_dir, {s: str(r) for s, r in roots.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1920, 3840])
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--overlap", type=int, default=64)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--work", help="folder for data and the run (default: a temporary one)")
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="modalens-mem-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work folder {work}")
    run_dir, roots = make_data(work, args.sizes, args.width, args.tile)
    from modalens.data import sample_ids
    from modalens.data.presets import mapinwild_spec

    results = []
    print(f"{'mode':>15} {'size':>6} {'output MiB':>11} {'peak-base MiB':>14} {'seconds':>8}")
    for size in args.sizes:
        sid = sample_ids(mapinwild_spec(roots[size]))["test"][0]
        out_mib = size * size * 4 / 2**20
        for mode in ("sliding_window", "predict"):
            cmd = [
                sys.executable,
                "-c",
                CHILD,
                mode,
                str(run_dir),
                roots[size],
                sid,
                str(args.tile),
                str(args.overlap),
            ]
            res = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if res.returncode != 0:
                print(res.stderr[-2000:])
                raise SystemExit(f"{mode} on {size} failed")
            info = json.loads(res.stdout.strip().splitlines()[-1])
            grown = info["peak_mib"] - info["base_mib"]
            results.append(
                {
                    "mode": mode,
                    "size": size,
                    "output_mib": out_mib,
                    "peak_minus_base_mib": grown,
                    **info,
                }
            )
            print(f"{mode:>15} {size:>6} {out_mib:>11.1f} {grown:>14.1f} {info['seconds']:>8.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
