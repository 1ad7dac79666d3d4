"""Run inputs that used to be accepted without a word: ``inputs: []``, a checkpoint of another
model than ``config.yaml``, a crop larger than the scenes, splits without a valid target pixel,
and a bad override blamed on the config file."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers import mtl_config, tiny_config

from modalens.data import presets
from modalens.data.samples import sample_ids
from modalens.errors import DataError, ModelError, SpecError
from modalens.training import evaluate, fit, load_config, load_run


@pytest.mark.parametrize("key", ["inputs", "use"])
def test_an_empty_input_list_is_refused(tmp_path: Path, key: str) -> None:
    cfg = mtl_config(tmp_path)
    cfg.pop("inputs")
    cfg[key] = []
    with pytest.raises(SpecError, match=rf"'{key}' names no modality \(key '{key}'\)"):
        load_config(cfg)


def test_an_override_is_named_by_its_flag(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path)
    with pytest.raises(SpecError, match=r"got 0 \(--devices on the command line, overriding key "
                       r"'train\.devices'\)"):  # fmt: skip
        load_config(cfg, overrides={"train": {"devices": 0}})
    cfg["train"]["num_nodes"] = 0  # in the config, not overridden: the key, not a flag
    with pytest.raises(SpecError, match=r"\(key 'train\.num_nodes'\)"):
        load_config(cfg)


def test_a_checkpoint_of_another_width_than_the_config_is_refused(
    tiny_run: Path, tmp_path: Path
) -> None:
    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("base_width: 8", "base_width: 16"))
    with pytest.raises(ModelError, match=r"has base_width 8 but config\.yaml says "
                       r"model\.base_width: 16.*best\.ckpt.*config\.yaml"):  # fmt: skip
        load_run(run)


def test_a_crop_larger_than_the_scenes_is_refused_before_training(
    mapinwild_root: Path, tmp_path: Path
) -> None:
    with pytest.raises(SpecError, match=r"train\.crop_size 1000 is larger than every train "
                       r"scene \(the largest: 64 px\)"):  # fmt: skip
        fit(tiny_config(mapinwild_root, crop_size=1000), out=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def _nan_targets(root: Path, split: str) -> list[str]:
    ids = sample_ids(presets.mapinwild_spec(root))[split]
    for sid in ids:
        with rasterio.open(root / "NI" / f"{sid}.tif", "r+") as ds:
            ds.write(np.full((1, ds.height, ds.width), np.nan, np.float32))
    return ids


def test_a_train_split_without_a_valid_target_is_refused_before_training(
    mapinwild_root: Path, tmp_path: Path
) -> None:
    _nan_targets(mapinwild_root, "train")
    with pytest.raises(DataError, match=r"no sample of the train split \(6 samples\)"):
        fit(tiny_config(mapinwild_root), out=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_a_test_split_without_a_valid_target_is_warned_then_refused(
    make_mapinwild, tmp_path: Path, caplog
) -> None:
    root = make_mapinwild(size=32)
    _nan_targets(root, "test")
    cfg = tiny_config(root, epochs=1, crop_size=0)
    cfg["model"]["base_width"] = 4
    with caplog.at_level(logging.INFO, logger="modalens"):
        run = fit(cfg, out=tmp_path / "run", progress=True)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("no sample of the test split has a valid target pixel" in w for w in warned)
    with pytest.raises(DataError, match=r"no sample of the test split \(2 samples\)"):
        evaluate(run, split="test")
    from modalens.attribution import attribute_run

    with pytest.raises(DataError, match=r"no sample of the test split"):
        attribute_run(run, out=tmp_path / "attr", progress=False)
    assert not (tmp_path / "attr").exists()  # no empty parts/ left behind
