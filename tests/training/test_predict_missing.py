"""predict --missing: the absent modality is filled with the train mean, never read, tagged."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from modalens.errors import SpecError


def test_predict_missing_equals_filled_forward(tiny_run: Path, tmp_path: Path, caplog) -> None:
    from modalens.data.reader import SampleReader
    from modalens.training import predict
    from modalens.training.dropout import fill_values
    from modalens.training.run import load_run

    run = load_run(tiny_run, device="cpu")
    spec = run.spec
    sid = sorted(__import__("modalens.data.samples", fromlist=["x"]).sample_ids(spec)["test"])[0]
    # the s1 files need not exist: hide them in a copy of the data
    data = tmp_path / "data"
    shutil.copytree(spec.root, data)
    removed = [p for p in data.rglob("*.tif") if p.parent.name.lower().startswith("s1")]
    assert removed
    for p in removed:
        p.unlink()
    with caplog.at_level(logging.WARNING):
        (path,) = predict(
            tiny_run,
            data_root=data,
            ids=[sid],
            out_dir=tmp_path / "out",
            tile=64,
            overlap=0,
            device="cpu",
            missing=["s1"],
        )
    assert "trained without modality dropout" in caplog.text and "untested" in caplog.text
    with rasterio.open(path) as ds:
        got = ds.read(1)
        assert ds.tags()["missing_modalities"] == "s1"
    # expected: the model's forward pass on the input whose s1 channels hold the train mean
    image, valid = SampleReader(spec).read_inputs(sid)
    fill = np.asarray(fill_values(spec, run.stats, "mean"), np.float32)
    start = 0
    for m in spec.modalities:
        if m.name == "s1":
            image[start : start + m.n_channels] = fill[start : start + m.n_channels, None, None]
        start += m.n_channels
    x = torch.from_numpy(image)[None]
    with torch.no_grad():
        out = run.module.infer(run.module.prepare_input(x, torch.from_numpy(valid)[None]))
    want = out[0, 0].numpy() * spec.target.scale
    ok = np.isfinite(got)
    assert ok.mean() > 0.5
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-4, atol=1e-4)


def test_missing_refuses_unknown_and_all(tiny_run: Path, tmp_path: Path) -> None:
    from modalens.training import predict

    with pytest.raises(SpecError, match="unknown modality 'radar'"):
        predict(tiny_run, out_dir=tmp_path / "a", device="cpu", missing=["radar"])
    with pytest.raises(SpecError, match="every input modality is missing"):
        from modalens.training.run import load_run

        names = load_run(tiny_run, device="cpu").spec.modality_names
        predict(tiny_run, out_dir=tmp_path / "b", device="cpu", missing=names)


def test_expected_metric_from_subsets_csv(tmp_path: Path) -> None:
    from modalens.training.dropout import expected_subset_metric

    assert expected_subset_metric(tmp_path, ["s1"], ["s2", "s1"]) == ""
    (tmp_path / "subsets").mkdir()
    (tmp_path / "subsets" / "subsets.csv").write_text("subset,mae\ns2+s1,0.1\ns2,0.25\n")
    line = expected_subset_metric(tmp_path, ["s1"], ["s2", "s1"])
    assert line.startswith("expected on s2") and "mae=0.25" in line
