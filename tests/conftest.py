"""Shared fixtures: a tiny MapInWild-layout dataset of small georeferenced GeoTIFFs.

``make_mapinwild(**options) -> Path`` writes one (into ``tmp_path``) readable with
``presets.mapinwild_spec(root)`` (NI target) or ``mapinwild_spec(root, target="mask")``:
``s2_temporal_subset/ s1/ ESA_WC/ VIIRS/ NI/ mask/ split_IDs.csv`` with numeric ids and a
NaN-padded split file. ``mapinwild_root`` is one with the defaults.

The test process gets the command's thread defaults (:func:`modalens.threads.configure_threads`)
before torch is imported.
"""

from __future__ import annotations

from modalens.threads import configure_threads

# the test process runs like the command (passive OpenMP waiting, the CPUs it may use): set
# before any test module imports torch, as `modalens` does before its commands import it
configure_threads()

from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from helpers import write_mapinwild  # noqa: E402


@pytest.fixture
def make_mapinwild(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_mapinwild(name="mapinwild", **write_mapinwild options) -> root``."""

    def make(name: str = "mapinwild", **options: object) -> Path:
        return write_mapinwild(tmp_path / name, **options)  # type: ignore[arg-type]

    return make


@pytest.fixture
def mapinwild_root(make_mapinwild: Callable[..., Path]) -> Path:
    """A default tiny MapInWild folder (10 samples of 64x64, splits 6/2/2)."""
    return make_mapinwild()


@pytest.fixture
def bigearthnet_root() -> Path:
    """The real BigEarthNet example beside the repository (skips when absent)."""
    root = Path(__file__).resolve().parents[2] / "shared" / "data" / "bigearthnet-example"
    if not root.is_dir():
        pytest.skip(f"BigEarthNet example data not found at {root}")
    return root


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained run (width 8, depth 2, one epoch) on 6 synthetic 64x64 scenes."""
    from modalens.data import synthetic
    from modalens.training import fit

    base = tmp_path_factory.mktemp("tiny_run")
    root = synthetic.generate_synthetic(base / "data", samples=6, size=64, seed=0, progress=False)
    cfg = {
        "name": "tiny",
        "data": {"preset": "mapinwild", "root": str(root)},
        "model": {"base_width": 8, "depth": 2},
        "train": {"epochs": 1, "batch_size": 2, "lr": 1e-3, "crop_size": 32, "patience": 5},
    }
    return fit(cfg, out=base / "run", progress=False)


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test (tiny models run faster so on a busy 2-core machine)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
