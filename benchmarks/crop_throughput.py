"""Random 256x256x14 crops per second through MultimodalDataset (single-process DataLoader).

Writes MapInWild-layout scenes (1920x1920, tiled 256x256, deflate; S2 uint16 x10, S1 float32 x2,
WorldCover uint8, VIIRS float32, NI float32 with NaN) to --workdir (default: a temp dir), then
draws --crops random crops with ``num_workers=0`` and prints crops/s. Target: >= 50 crops/s on
one core::

    taskset -c 0 python benchmarks/crop_throughput.py
    taskset -c 0 python benchmarks/crop_throughput.py --gdal-cache-mb 0   # no GDAL block cache
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _smooth(rng: np.random.Generator, bands: int, size: int, lo: float, hi: float) -> np.ndarray:
    """Spatially correlated values (coarse noise upsampled + fine noise), like imagery."""
    coarse = rng.uniform(lo, hi, size=(bands, size // 32 + 1, size // 32 + 1))
    up = np.repeat(np.repeat(coarse, 32, axis=1), 32, axis=2)[:, :size, :size]
    return up + rng.normal(0, (hi - lo) * 0.02, size=up.shape)


def write_scenes(root: Path, n: int, size: int, seed: int = 0) -> list[str]:
    from affine import Affine
    from rasterio.crs import CRS

    from modalens.data.rasters import write_geotiff

    rng = np.random.default_rng(seed)
    crs = CRS.from_epsg(32633)
    ids = [str(i + 1) for i in range(n)]
    for k, sid in enumerate(ids):
        t = Affine(10.0, 0.0, 400000.0 + k * size * 10.0, 0.0, -10.0, 5300000.0)
        kw = {"crs": crs, "transform": t, "blocksize": 256}
        s2 = _smooth(rng, 10, size, 0, 5000).clip(0, 10000).astype(np.uint16)
        write_geotiff(root / "s2_temporal_subset" / f"{sid}.tif", s2, **kw)
        s1 = _smooth(rng, 2, size, -25, -5).astype(np.float32)
        write_geotiff(root / "s1" / f"{sid}.tif", s1, **kw)
        classes = np.array([10, 20, 30, 40, 50, 60, 80, 90], np.uint8)
        wc = classes[(_smooth(rng, 1, size, 0, 7.99).clip(0, 7.99)).astype(int)]
        write_geotiff(root / "ESA_WC" / f"{sid}.tif", wc, **kw)
        viirs = _smooth(rng, 1, size, 0, 20).clip(0, None).astype(np.float32)
        write_geotiff(root / "VIIRS" / f"{sid}.tif", viirs, **kw)
        ni = _smooth(rng, 1, size, 0, 100).clip(0, 100).astype(np.float32)
        ni[:, :64, :] = np.nan
        write_geotiff(root / "NI" / f"{sid}.tif", ni, nodata=float("nan"), **kw)
    lines = ["train,validation,test"] + [f"{i},," for i in ids[:-2]]
    lines[1] = f"{ids[0]},{ids[-2]},{ids[-1]}"
    (root / "split_IDs.csv").write_text("\n".join(lines) + "\n")
    return ids


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=None, help="where to write the scenes")
    ap.add_argument("--scenes", type=int, default=6)
    ap.add_argument("--size", type=int, default=1920)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--crops", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--gdal-cache-mb", type=int, default=None, help="GDAL_CACHEMAX (MB)")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of the crop loop")
    args = ap.parse_args(argv)
    if args.gdal_cache_mb is not None:
        os.environ["GDAL_CACHEMAX"] = str(args.gdal_cache_mb)

    import torch
    from torch.utils.data import DataLoader, RandomSampler

    import modalens.data as data
    from modalens.data import presets
    from modalens.data.samples import discover_ids

    torch.set_num_threads(1)
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="modalens-bench-")
        root = Path(tmp.name)
    else:
        root = args.workdir
        root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if not (root / "split_IDs.csv").exists():
        write_scenes(root, args.scenes, args.size)
    print(f"scenes ready in {time.perf_counter() - t0:.1f} s at {root}", file=sys.stderr)

    spec = presets.mapinwild_spec(root)  # S1/VIIRS constants given: no statistics needed
    ids = discover_ids(spec)
    ds = data.MultimodalDataset(spec, "train", ids=ids, crop_size=args.crop, random_crop=True)
    sampler = RandomSampler(
        ds, replacement=True, num_samples=args.crops, generator=torch.Generator().manual_seed(0)
    )
    loader = DataLoader(ds, batch_size=args.batch_size, sampler=sampler, num_workers=0)
    ds[0]  # open files, plans (excluded from timing as in a real epoch loop after warm-up)

    def run() -> int:
        n = 0
        for batch in loader:
            assert batch["image"].shape[1:] == (14, args.crop, args.crop)
            n += batch["image"].shape[0]
        return n

    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
    t0 = time.perf_counter()
    n = run()
    dt = time.perf_counter() - t0
    if args.profile:
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"{n / dt:.1f} crops/s ({n} random {args.crop}x{args.crop}x14 crops in {dt:.2f} s, "
        f"{args.scenes} scenes of {args.size}^2, num_workers=0, {cores} core(s) available, "
        f"GDAL_CACHEMAX={os.environ.get('GDAL_CACHEMAX', 'default')})"
    )
    ds.reader.close()
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
