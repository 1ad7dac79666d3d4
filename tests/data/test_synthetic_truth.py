"""Known truth of the synthetic data: realised importances, sparse modalities and the decoy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from modalens.data import load_spec, resolve_spec
from modalens.data.synthetic import (
    DECOY,
    SPEC_FILE,
    RealisedImportance,
    generate_synthetic,
    parse_importance,
    parse_sparsity,
)
from modalens.data.synthetic.scenes import DECOY_FOLDER
from modalens.errors import SpecError

N, SIZE = 6, 32


def _realised(root: Path) -> dict:
    return json.loads((root / "metadata.json").read_text())["realised_importance"]


@pytest.fixture(scope="module")
def decoy_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic(
        tmp_path_factory.mktemp("d") / "data",
        samples=N,
        size=SIZE,
        importance="s2=0.5,s1=0,esa_wc=0.3,viirs=0.2,decoy=0",
        progress=False,
    )


def test_realised_is_zero_for_zero_weight_and_decoy(decoy_data: Path) -> None:
    real = _realised(decoy_data)
    assert real["points"]["s1"] == 0.0 and real["points"][DECOY] == 0.0
    assert real["points"]["s2"] > real["points"]["viirs"] > 0
    assert sum(real["share"].values()) == pytest.approx(1.0, abs=1e-5)
    assert sorted(real["per_sample"]) == [str(100000 + i) for i in range(N)]
    for shares in real["per_sample_share"].values():
        assert sum(shares.values()) == pytest.approx(1.0, abs=1e-5)
        assert shares[DECOY] == 0.0


def test_decoy_raster_and_spec(decoy_data: Path) -> None:
    with rasterio.open(decoy_data / DECOY_FOLDER / "100000.tif") as src:
        noise = src.read()
    assert noise.shape == (1, SIZE, SIZE) and 0.5 < noise.std() < 2.0
    spec = load_spec(decoy_data / SPEC_FILE)
    assert spec.modality_names == ["s2", "s1", "esa_wc", "viirs", DECOY]
    assert spec.root == decoy_data
    # a folder that carries its spec is read with it
    assert resolve_spec(decoy_data).modality_names == spec.modality_names
    meta = json.loads((decoy_data / "metadata.json").read_text())
    assert meta["decoy"]["folder"] == DECOY_FOLDER


def test_sparse_modality_realises_less_than_its_weight(tmp_path: Path) -> None:
    common = {"samples": N, "size": SIZE, "progress": False}
    dense = _realised(generate_synthetic(tmp_path / "dense", **common))["share"]
    sparse_root = generate_synthetic(tmp_path / "sparse", sparsity="viirs=0.9", **common)
    sparse = _realised(sparse_root)["share"]
    assert sparse["viirs"] < 0.75 * dense["viirs"] and sparse["viirs"] < 0.1  # weight 0.1
    meta = json.loads((sparse_root / "metadata.json").read_text())
    assert meta["sparsity"]["viirs"] == 0.9 and meta["importance"]["viirs"] == 0.1
    # only VIIRS changes: the other rasters are the dense ones
    for folder in ("s2_temporal_subset", "s1", "ESA_WC"):
        a = (tmp_path / "dense" / folder / "100001.tif").read_bytes()
        assert a == (sparse_root / folder / "100001.tif").read_bytes()
    assert (tmp_path / "dense" / "VIIRS" / "100001.tif").read_bytes() != (
        sparse_root / "VIIRS" / "100001.tif"
    ).read_bytes()
    assert not (tmp_path / "dense" / SPEC_FILE).exists()


def test_configurable_importance_changes_the_ranking(tmp_path: Path) -> None:
    common = {"samples": N, "size": SIZE, "progress": False}
    a = _realised(
        generate_synthetic(
            tmp_path / "a", importance="s2=0.1,s1=0.2,esa_wc=0.3,viirs=0.4", **common
        )
    )
    b = _realised(
        generate_synthetic(
            tmp_path / "b", importance="s2=0.4,s1=0.3,esa_wc=0.2,viirs=0.1", **common
        )
    )
    order = lambda r: sorted(r["share"], key=r["share"].get)  # noqa: E731
    assert order(a) == ["s2", "s1", "esa_wc", "viirs"]
    assert order(b) == ["viirs", "esa_wc", "s1", "s2"]


def test_realised_importance_matches_a_direct_computation() -> None:
    rng = np.random.default_rng(0)
    z = {"a": rng.uniform(0, 1, (2, 20, 20)), "b": rng.beta(2, 5, (2, 20, 20))}
    valid = np.ones((20, 20), bool)
    valid[:3] = False
    acc = RealisedImportance(["a", "b", "c"], {"a": 0.5, "b": 0.5})
    for i in range(2):
        acc.add(str(i), {k: v[i] for k, v in z.items()}, valid)
    res = acc.result()
    for k in ("a", "b"):
        pooled = z[k][:, valid]
        want = 100 * 0.5 * np.abs(pooled - pooled.mean()).mean()
        assert res["points"][k] == pytest.approx(want, rel=2e-3)
    assert res["points"]["c"] == 0.0


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: parse_importance("s2=1,decoy=0.2"), "pure noise"),
        (lambda: parse_sparsity("viirs=1.5"), "must be in"),
        (lambda: parse_sparsity("lidar=0.5"), "'lidar' is not allowed in the sparsity"),
    ],
)
def test_bad_truth_options(call, needle: str) -> None:
    with pytest.raises(SpecError, match=needle):
        call()
