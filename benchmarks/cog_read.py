"""Random crop read rate: COGs over a loopback HTTP server against local GeoTIFFs, one run.

Writes one synthetic dataset twice (``modalens synth``: plain tiled GeoTIFF, 256 px tiles, and
``--cog``, 128 px tiles), serves the COG copy from a loopback server that honours range requests
(tests/rangeserver.py, a child process), then reads the same random crops (every modality and
the target, :class:`~modalens.data.reader.SampleReader`, one process) three ways and prints a
markdown table: crops/s, MB/s of decoded crop values, bytes fetched over HTTP per crop and the
ratio to the local GeoTIFF. Each way starts with fresh readers; the HTTP way starts with an
empty GDAL cache for its URLs (a new server port)::

    python benchmarks/cog_read.py            # 4 scenes of 1024 px, 200 crops of 256 px
    python benchmarks/cog_read.py --quick    # 3 scenes of 512 px, 40 crops
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from rangeserver import RangeServer  # noqa: E402

from modalens.data import synthetic  # noqa: E402
from modalens.data.presets import mapinwild_spec  # noqa: E402
from modalens.data.reader import SampleReader  # noqa: E402
from modalens.data.samples import sample_ids  # noqa: E402


def windows(ids: list[str], size: int, crop: int, n: int, seed: int) -> list[tuple]:
    """``n`` random (id, window) pairs, the same for every way of reading."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        r, c = rng.integers(0, size - crop + 1, 2)
        out.append((ids[int(rng.integers(len(ids)))], (int(r), int(c), crop, crop)))
    return out


def read_all(root: str | Path, crops: list[tuple]) -> tuple[float, int]:
    """Seconds to read every crop (inputs and target) and the decoded bytes."""
    reader = SampleReader(mapinwild_spec(root))
    nbytes = 0
    t0 = time.perf_counter()
    for sid, win in crops:
        raw = reader.read_raw(sid, win)
        target, _ = reader.read_target(sid, win)
        nbytes += sum(a.nbytes for a in raw.values()) + target.nbytes
    seconds = time.perf_counter() - t0
    reader.close()
    return seconds, nbytes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="3 scenes of 512 px, 40 crops")
    p.add_argument("--samples", type=int, default=4)
    p.add_argument("--size", type=int, default=1024, help="scene size in px")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--crops", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", help="keep the datasets here (default: a temp folder)")
    a = p.parse_args()
    if a.quick:
        a.samples, a.size, a.crops = 3, 512, 40
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(a.workdir or tmp)
        plain = synthetic.generate_synthetic(work / "gtiff", a.samples, a.size, progress=False)
        cog = synthetic.generate_synthetic(
            work / "cog", a.samples, a.size, progress=False, cog=True
        )
        ids = sorted(i for ids in sample_ids(mapinwild_spec(plain)).values() for i in ids)
        crops = windows(ids, a.size, a.crop, a.crops, a.seed)
        rows = [("local GeoTIFF (256 px tiles)", *read_all(plain, crops), None)]
        rows.append(("local COG (128 px tiles)", *read_all(cog, crops), None))
        with RangeServer(cog) as srv:
            srv.reset()
            seconds, nbytes = read_all(srv.url, crops)
            fetched = srv.bytes_served()
            n_req = len(srv.requests())
        rows.append(("COG over loopback HTTP", seconds, nbytes, (fetched, n_req)))
    total = sum(f.stat().st_size for f in cog.rglob("*.tif")) if a.workdir else None
    print(
        f"\n{a.crops} random {a.crop}x{a.crop} crops (5 files each) of {a.samples} scenes of "
        f"{a.size} px, one process\n"
    )
    print("| read | crops/s | MB/s (decoded) | fetched/crop | requests/crop | vs local GeoTIFF |")
    print("|---|---:|---:|---:|---:|---:|")
    base = a.crops / rows[0][1]
    for name, seconds, nbytes, http in rows:
        rate = a.crops / seconds
        fetched = f"{http[0] / a.crops / 1e3:.0f} kB" if http else "-"
        reqs = f"{http[1] / a.crops:.1f}" if http else "-"
        print(
            f"| {name} | {rate:.1f} | {nbytes / seconds / 1e6:.1f} | {fetched} | {reqs} "
            f"| {rate / base:.2f}x |"
        )
    if total:
        print(f"\nCOG dataset: {total / 1e6:.1f} MB on disk")


if __name__ == "__main__":
    main()
