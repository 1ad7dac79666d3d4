"""mtl explain: AUROC by hand, error statistics on a planted shared error and its control,
the generator's error link, and one tiny end-to-end explanation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import rasterio
from helpers import mtl_config

from modalens.data import synthetic
from modalens.data.synthetic.linking import LINK_DB, LINK_POINTS
from modalens.errors import SpecError
from modalens.multitask import describe_explanation, explain, fit_multitask
from modalens.multitask.errorstats import auroc, auroc_table, correlation_table, pixel_correlation


def _pairwise_auroc(scores, labels):
    pos, neg = scores[labels], scores[~labels]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def test_auroc_hand_cases():
    y = np.array([False, False, True, True])
    assert auroc([1, 2, 3, 4], y) == 1.0
    assert auroc([4, 3, 2, 1], y) == 0.0
    assert auroc([5, 5, 5, 5], y) == 0.5  # every pair tied: one half each
    # positives {2, 3} against negatives {1, 2}: 1 + 0.5 + 1 + 1 of 4 pairs
    assert auroc([1, 2, 2, 3], [False, True, False, True]) == pytest.approx(0.875)
    assert np.isnan(auroc([1, 2], [True, True]))
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, 40).astype(float)  # many ties
    lab = rng.random(40) < 0.3
    assert auroc(s, lab) == pytest.approx(_pairwise_auroc(s, lab))


def _planted(linked: bool, n: int = 60, size: int = 24, seed: int = 0):
    """Error maps of ``n`` samples: main = |a_i E_i + noise|; the auxiliary error shares
    ``a_i E_i`` when ``linked``, else has its own amplitude and field."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.1, 1.0, n)
    e = rng.standard_normal((n, size, size))
    main = np.abs(3 * a[:, None, None] * e + 0.3 * rng.standard_normal((n, size, size)))
    if linked:
        b, f = a, e
    else:
        b, f = rng.uniform(0.1, 1.0, n), rng.standard_normal((n, size, size))
    aux = np.abs(2 * b[:, None, None] * f + 0.3 * rng.standard_normal((n, size, size)))
    return main, aux


@pytest.mark.parametrize("linked", [True, False])
def test_shared_error_structure_is_detected_and_control_is_not(linked):
    main_maps, aux_maps = _planted(linked)
    main, aux = main_maps.mean(axis=(1, 2)), {"s1": aux_maps.mean(axis=(1, 2))}
    corr = correlation_table(main, aux, n_boot=300).iloc[0]
    roc = auroc_table(main, aux, n_perm=300).iloc[0]
    pix = np.array([pixel_correlation(m, x) for m, x in zip(main_maps, aux_maps, strict=True)])
    assert corr["n"] == 60 and roc["n_worst"] == 6
    assert corr["pearson_low"] <= corr["pearson"] <= corr["pearson_high"]
    assert roc["random_low"] < 0.5 < roc["random_high"]
    if linked:
        assert corr["pearson_low"] > 0.5 and corr["spearman_low"] > 0.5
        assert roc["auroc"] > 0.9 > roc["random_high"]
        assert np.median(pix) > 0.5
    else:
        assert corr["pearson_low"] < 0 < corr["pearson_high"]
        assert corr["spearman_low"] < 0 < corr["spearman_high"]
        assert roc["random_low"] <= roc["auroc"] <= roc["random_high"]
        assert abs(np.median(pix)) < 0.1


def test_error_link_plants_a_shared_latent(tmp_path):
    base = synthetic.generate_synthetic(
        tmp_path / "base", samples=3, size=32, seed=1, progress=False
    )
    link = synthetic.generate_synthetic(
        tmp_path / "link", samples=3, size=32, seed=1, progress=False, error_link="s1=1"
    )
    for folder in ("s2_temporal_subset", "ESA_WC", "VIIRS"):  # other modalities: same bytes
        assert (base / folder / "100001.tif").read_bytes() == (
            link / folder / "100001.tif"
        ).read_bytes()
    meta = json.loads((link / "metadata.json").read_text())
    assert "error_link" not in json.loads((base / "metadata.json").read_text())
    amp = meta["error_link"]["amplitude"]["100001"]
    assert 0.1 <= amp <= 1.0 and meta["error_link"]["strength"] == {"s1": 1.0}

    def read(root, folder):
        with rasterio.open(root / folder / "100001.tif") as ds:
            return ds.read().astype(np.float64)

    d_s1 = read(link, "s1") - read(base, "s1")
    d_ni = (read(link, "NI") - read(base, "NI"))[0]
    # the same dB offset on VV and VH: the cross-polarisation ratio (z_s1) is unchanged
    np.testing.assert_allclose(d_s1[0], d_s1[1], atol=1e-4)
    assert d_s1[0].std() == pytest.approx(LINK_DB * amp, rel=1e-3)
    # the target moves by the same field (up to clipping at 0 and 100)
    ok = np.isfinite(d_ni) & (read(link, "NI")[0] > 0) & (read(link, "NI")[0] < 100)
    ok &= (read(base, "NI")[0] > 0) & (read(base, "NI")[0] < 100)
    ratio = LINK_POINTS / LINK_DB
    np.testing.assert_allclose(d_ni[ok], ratio * d_s1[0][ok], atol=1e-3)
    with pytest.raises(SpecError, match="'esa_wc' is not allowed in the error link"):
        synthetic.generate_synthetic(tmp_path / "bad", samples=3, size=32, error_link="esa_wc=1")


def test_explain_writes_every_artefact(tmp_path):
    root = synthetic.generate_synthetic(
        tmp_path / "data", samples=10, size=32, seed=0, progress=False, error_link="s1=1"
    )
    run = fit_multitask(mtl_config(root), out=tmp_path / "run", progress=False)
    out = tmp_path / "ex"
    result = explain(
        run, split="train", out=out, worst=1, groups="modalities", n_boot=50, progress=False
    )
    columns = {
        "mtl_errors.csv": [
            "sample_id",
            "main_error",
            "aux_s1_error",
            "aux_viirs_error",
            "aux_esa_wc_error",
        ],
        "mtl_correlation.csv": [
            "auxiliary",
            "pearson",
            "pearson_low",
            "pearson_high",
            "spearman",
            "spearman_low",
            "spearman_high",
            "n",
        ],
        "mtl_pixel_correlation.csv": ["sample_id", "auxiliary", "pixel_pearson"],
        "mtl_auroc.csv": ["auxiliary", "auroc", "random_low", "random_high", "n_worst"],
        "mtl_sensitivity.csv": ["input", "head", "mean", "ci_low", "ci_high", "share"],
    }
    for name, cols in columns.items():
        assert list(pd.read_csv(out / name).columns) == cols, name
    errors = pd.read_csv(out / "mtl_errors.csv", dtype={"sample_id": str})
    assert len(errors) == 8 and (errors.drop(columns="sample_id") > 0).all().all()
    sens = pd.read_csv(out / "mtl_sensitivity.csv")
    assert set(sens["head"]) == {"main", "s1", "viirs", "esa_wc"}
    assert list(sens["input"]) == ["s2"] * 4 and (sens["mean"] > 0).all()
    assert np.allclose(sens["share"], 1.0)  # one input group: all of each head's sensitivity
    for fig in ("mtl_scatter", "mtl_pixel_correlation", "mtl_sensitivity"):
        assert (out / f"{fig}.png").is_file() and (out / f"{fig}.svg").is_file()
    worst = errors.loc[errors["main_error"].idxmax(), "sample_id"]
    assert (out / "maps" / f"{worst}.png").is_file()
    with rasterio.open(root / "s2_temporal_subset" / f"{worst}.tif") as ref:
        crs = ref.crs
    for head in ("main", "s1", "viirs", "esa_wc"):
        with rasterio.open(out / "maps" / f"{worst}_{head}_error.tif") as ds:
            assert ds.crs == crs and ds.count == 1
            arr = ds.read(1)
        assert np.nanmin(arr) >= 0 and np.isfinite(arr).any()
    lines = describe_explanation(out)
    assert lines == describe_explanation(result.tables)
    # eight samples: too few to read a correlation, and the reading says so
    assert any(
        "Sentinel-1 reconstruction error: only 8 samples: too few for a finding" in line
        for line in lines
    )
    assert not any("Pearson r =" in line for line in lines)
    assert any("head relies most on" in line for line in lines)
