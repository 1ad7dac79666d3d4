"""Each task type trains as a multitask model and predicts without its auxiliary modalities."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
from helpers import mtl_config

from modalens.data import MultimodalDataset, collate
from modalens.data.auxiliary import aux_key, aux_valid_key
from modalens.data.reader import SampleReader
from modalens.models import MultiTaskUNet
from modalens.multitask import fit_multitask
from modalens.training import load_config, load_run, predict, spec_from_config
from modalens.training.module import build_module


def _deployment_copy(root: Path, dest: Path, keep: tuple[str, ...]) -> Path:
    """A copy of the data with only the input folders (the auxiliary ones deleted)."""
    shutil.copytree(root, dest)
    for folder in dest.iterdir():
        if folder.is_dir() and folder.name not in keep:
            shutil.rmtree(folder)
    return dest


def test_regression_trains_and_deploys_on_inputs_only(mapinwild_root, tmp_path):
    cfg = mtl_config(mapinwild_root)
    run_dir = fit_multitask(cfg, out=tmp_path / "run", progress=False)
    run = load_run(run_dir)
    assert isinstance(run.model, MultiTaskUNet)
    # the first convolution sees only the inputs' channels (s2: 10 bands)
    assert run.model.stem[0].in_channels == 10 == run.spec.n_channels
    assert run.spec.auxiliary_names == ["s1", "viirs", "esa_wc"]
    epochs = pd.read_csv(run_dir / "metrics.csv")
    for col in (
        "train_total_loss",
        "val_aux_s1_mae",
        "val_aux_viirs_rmse",
        "val_aux_esa_wc_iou_macro",
        "val_aux_esa_wc_accuracy",
        "weight_esa_wc",
    ):
        assert col in epochs.columns, col
    params = pd.read_csv(run_dir / "parameters.csv").set_index("part")["parameters"]
    assert params["head:s1"] == 8 * 2 + 2 and params["head:esa_wc"] == 8 * 11 + 11
    assert params["total"] == sum(p.numel() for p in run.model.parameters())
    tested = pd.read_csv(run_dir / "metrics_test.csv")
    assert {"aux_s1_mae", "aux_esa_wc_accuracy"} <= set(tested.columns)

    data = _deployment_copy(mapinwild_root, tmp_path / "deploy", keep=("s2_temporal_subset",))
    out = tmp_path / "pred"
    paths = predict(
        run_dir, data_root=data, ids=["1"], out_dir=out, tile=32, overlap=8, auxiliary=True
    )
    assert [p.name for p in paths] == ["1.tif"]
    with rasterio.open(mapinwild_root / "s1" / "1.tif") as ref:
        crs, transform = ref.crs, ref.transform
    with rasterio.open(out / "auxiliary" / "s1" / "1.tif") as ds:
        assert ds.count == 2 and ds.crs == crs and ds.transform == transform
        s1 = ds.read()
    # one tile over the whole 64 px scene: the s1 head's output on the scene, the
    # normalisation undone (x * std + mean, in dB), NaN where the inputs are invalid
    predict(
        run_dir,
        data_root=data,
        ids=["1"],
        out_dir=tmp_path / "whole",
        tile=64,
        overlap=0,
        auxiliary=True,
    )
    with rasterio.open(tmp_path / "whole" / "auxiliary" / "s1" / "1.tif") as ds:
        whole = ds.read()
    reader = SampleReader(run.spec)
    image, valid = reader.read_inputs("1")
    reader.close()
    x = torch.from_numpy(np.where(valid[None], image, 0.0).astype(np.float32))[None]
    with torch.inference_mode():
        head = run.model.eval().forward_all(x)["s1"][0].numpy()
    norm = next(m for m in run.spec.auxiliary if m.name == "s1").normalization
    expected = head * np.array(norm.std)[:, None, None] + np.array(norm.mean)[:, None, None]
    expected[:, ~valid] = np.nan
    np.testing.assert_allclose(whole, expected, rtol=1e-5, atol=1e-4)
    assert s1.shape == whole.shape and np.isfinite(s1).mean() == np.isfinite(whole).mean()
    with rasterio.open(out / "auxiliary" / "esa_wc" / "1.tif") as ds:
        codes = set(ds.read(1).ravel().tolist())
    assert codes <= {10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100}


def test_segmentation_main_target_from_landcover(mapinwild_root, tmp_path):
    config = Path(__file__).resolve().parents[2] / "src/modalens/configs/mtl-segmentation.yaml"
    overrides = {
        "data": {"root": str(mapinwild_root)},
        "model": {"base_width": 4, "depth": 2},
        "train": {"epochs": 1, "crop_size": 32, "batch_size": 2},
    }
    cfg = load_config(config, overrides)
    assert cfg.task == "segmentation"
    spec = spec_from_config(cfg)
    assert spec.modality_names == ["s2"] and spec.auxiliary_names == ["s1", "viirs"]
    from modalens.training import fit

    run_dir = fit(config, out=tmp_path / "run", progress=False, overrides=overrides)
    data = _deployment_copy(mapinwild_root, tmp_path / "deploy", keep=("s2_temporal_subset",))
    (path,) = predict(
        run_dir,
        data_root=data,
        ids=["2"],
        out_dir=tmp_path / "p",
        tile=32,
        overlap=8,
        auxiliary=True,
    )
    with rasterio.open(path) as ds:
        assert set(ds.read(1).ravel().tolist()) <= {10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100}
    assert (tmp_path / "p" / "auxiliary" / "viirs" / "2.tif").is_file()


def test_classification_on_bigearthnet(bigearthnet_root, tmp_path):
    config = Path(__file__).resolve().parents[2] / "src/modalens/configs/mtl-classification.yaml"
    overrides = {"model": {"base_width": 4, "depth": 2}, "train": {"epochs": 1}}
    cfg = load_config(config, {**overrides, "data": {"root": str(bigearthnet_root)}})
    run_dir = fit_multitask(cfg, out=tmp_path / "run", progress=False)
    run = load_run(run_dir)
    assert run.task.name == "classification" and run.model.stem[0].in_channels == 12
    assert "val_aux_s1_mae" in pd.read_csv(run_dir / "metrics.csv").columns
    data = tmp_path / "deploy"
    shutil.copytree(bigearthnet_root, data)
    # the S1 rasters are gone; the preset's S1->S2 pairing JSONs (its index) stay
    s1_rasters = list((data / "BigEarthNet-S1-Example").rglob("*.tif"))
    assert s1_rasters
    for f in s1_rasters:
        f.unlink()
    sid = run.dataset("test").ids[0]
    (path,) = predict(run_dir, data_root=data, ids=[sid], out_dir=tmp_path / "p", auxiliary=True)
    assert path.suffix == ".json"
    with rasterio.open(tmp_path / "p" / "auxiliary" / "s1" / f"{sid}.tif") as ds:
        assert ds.count == 2


def test_auxiliary_targets_are_flipped_with_the_image(mapinwild_root):
    cfg = load_config(mtl_config(mapinwild_root))
    from modalens.data.stats import with_statistics

    spec, _ = with_statistics(spec_from_config(cfg), mapinwild_root / "stats.json", progress=False)
    plain = collate([MultimodalDataset(spec, "train", crop_size=0)[0]])
    module = build_module(
        cfg.model_copy(update={"train": cfg.train.model_copy(update={"augment": {"hflip": 1.0}})}),
        spec,
    )
    module.trainer = SimpleNamespace(training=True)  # what on_after_batch_transfer asks
    flipped = {
        k: v[0] if isinstance(v, torch.Tensor) else v
        for k, v in module.on_after_batch_transfer(plain, 0).items()
    }
    plain = {k: v[0] if isinstance(v, torch.Tensor) else v for k, v in plain.items()}
    assert torch.equal(flipped["image"], plain["image"].flip(-1))
    assert torch.equal(flipped[aux_key("s1")], plain[aux_key("s1")].flip(-1))
    assert torch.equal(flipped[aux_key("esa_wc")], plain[aux_key("esa_wc")].flip(-1))
    assert torch.equal(flipped[aux_valid_key("viirs")], plain[aux_valid_key("viirs")].flip(-1))
    assert plain[aux_key("esa_wc")].dtype == torch.int64 and plain[aux_key("s1")].shape[0] == 2


@pytest.mark.parametrize("decoder", ["shared", "separate"])
def test_decoder_choice(decoder):
    model = MultiTaskUNet(3, 1, 4, 2, auxiliary={"a": 2, "b": 5}, decoder=decoder)
    outs = model.forward_all(torch.zeros(1, 3, 16, 16))
    assert [tuple(v.shape) for v in outs.values()] == [
        (1, 1, 16, 16),
        (1, 2, 16, 16),
        (1, 5, 16, 16),
    ]
    counts = model.parameter_counts()
    assert ("decoder:a" in counts) == (decoder == "separate")
    x = torch.ones(1, 3, 16, 16)
    assert torch.equal(model(x), model.forward_all(x)["main"])
