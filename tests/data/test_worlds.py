"""The faithfulness benchmark's worlds: valid datasets whose truth is what their formula says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from modalens.data.checks import check_dataset, has_errors
from modalens.data.specfile import load_spec
from modalens.data.synthetic.worlds import find_real_chip, make_world, realised_share
from modalens.errors import SpecError
from modalens.validation.faithfulness_scores import misordered

SYNTHETIC = ("correlated", "interaction", "scales")
CHIP = Path(__file__).resolve().parents[3] / "shared" / "data" / "sen1floods11-example"


def _read(root: Path, folder: str, sid: str) -> np.ndarray:
    with rasterio.open(root / folder / f"{sid}.tif") as src:
        return src.read().astype(np.float64)


@pytest.mark.parametrize("world", SYNTHETIC)
def test_synthetic_world_is_a_valid_dataset_with_its_truth(tmp_path: Path, world: str) -> None:
    data = make_world(world, tmp_path / world, seed=0, samples=10, size=32)
    spec = load_spec(data.spec)
    assert [m.name for m in spec.modalities] == list(data.modalities)
    assert not has_errors(check_dataset(spec, progress=False))
    assert "decoy" in data.null
    for values in data.per_sample.values():
        assert all(values[m] == 0.0 for m in data.null)
        assert all(values[m] > 0.0 for m in data.modalities if m not in data.null)
    share = realised_share(data.per_sample, list(data.per_sample))
    assert sum(share.values()) == pytest.approx(1.0)


def test_correlated_world_has_a_correlated_but_non_causal_modality(tmp_path: Path) -> None:
    data = make_world("correlated", tmp_path / "w", seed=1, samples=8, size=32)
    assert data.null == ("dem", "decoy")
    dem = np.concatenate([_read(data.root, "dem", s).ravel() for s in data.per_sample])
    target = np.concatenate([_read(data.root, "target", s).ravel() for s in data.per_sample])
    # the elevation raster follows the target closely, yet the target's formula has no term of it
    assert np.corrcoef(dem, target)[0, 1] > 0.5


def test_world_is_reused_only_for_the_same_call(tmp_path: Path) -> None:
    first = make_world("interaction", tmp_path / "w", seed=0, samples=6, size=32)
    stamp = (first.root / "target" / "100000.tif").stat().st_mtime_ns
    again = make_world("interaction", tmp_path / "w", seed=0, samples=6, size=32)
    assert again.per_sample == first.per_sample
    assert (first.root / "target" / "100000.tif").stat().st_mtime_ns == stamp
    other = make_world("interaction", tmp_path / "w", seed=1, samples=6, size=32)
    assert other.per_sample != first.per_sample
    with pytest.raises(SpecError, match="unknown world"):
        make_world("flat", tmp_path / "x", seed=0)


@pytest.mark.skipif(not CHIP.is_dir(), reason="../shared/data/sen1floods11-example is absent")
def test_real_world_target_is_ndwi_of_the_written_s2(tmp_path: Path) -> None:
    assert find_real_chip(CHIP.parents[2]) == CHIP
    data = make_world("real", tmp_path / "real", seed=0, size=64, chip=CHIP)
    assert data.null == ("s1", "decoy")
    sid = sorted(data.per_sample)[0]
    s2, target = _read(data.root, "s2", sid), _read(data.root, "target", sid)[0]
    ndwi = (s2[2] - s2[7]) / (s2[2] + s2[7])  # B3, B8
    ok = np.isfinite(target)
    np.testing.assert_allclose(target[ok], ndwi[ok], rtol=1e-5, atol=1e-6)
    assert data.per_sample[sid]["s2"] > 0 and data.per_sample[sid]["s1"] == 0.0
    assert not has_errors(check_dataset(load_spec(data.spec), progress=False))


def test_misordered_forgives_only_swaps_within_the_truths_sampling_error() -> None:
    # a > b clearly; b and c differ by 0.05, far less than their difference's standard error
    b = 5.0 + np.linspace(-1, 1, 40)
    c = b - 0.05 + np.tile([2.0, -2.0], 20)
    per_sample = np.stack([np.full(40, 10.0), b, c], 1)
    assert misordered(np.array([3.0, 2.0, 1.0]), per_sample) == []  # a > b > c: fine
    assert misordered(np.array([3.0, 1.0, 2.0]), per_sample) == []  # b, c swapped: forgiven
    bad = misordered(np.array([1.0, 3.0, 2.0]), per_sample)  # a below b and c: not forgiven
    assert [(i, j) for i, j, _d, _se in bad] == [(0, 1), (0, 2)]
    zero = np.zeros((5, 2))  # two null modalities: the truth does not order them
    assert misordered(np.array([1.0, 2.0]), zero) == []
