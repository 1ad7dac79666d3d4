"""The U-Net's minimum input size: 2**depth per side (odd sides fine), a training input's
bottleneck more than one pixel; inputs below it fail in one line (CLI exit 2) in fit, test and
scene predictions instead of torch's "Output size is too small"."""

from __future__ import annotations

import shutil

import pytest
import torch
import yaml
from helpers import tiny_config, write_mapinwild

from modalens.cli import main
from modalens.errors import DataError, SpecError
from modalens.models import UNet, check_input_size, min_input_size


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_the_rule_matches_the_model() -> None:
    model = UNet(3, 1, base_width=4, depth=3).eval()
    assert min_input_size(3) == 8
    for side in (8, 9, 13):  # odd sides are padded back by the decoder
        check_input_size(side, side + 1, "x", depth=3)
        assert model(torch.zeros(1, 3, side, side + 1)).shape[-2:] == (side, side + 1)
    with pytest.raises(RuntimeError, match="too small"):
        model(torch.zeros(1, 3, 7, 9))
    with pytest.raises(DataError) as info:
        check_input_size(7, 9, "sample 'a'", depth=3)
    assert str(info.value) == (
        "a 7x9 px input is below the 8 px minimum side of a depth-3 U-Net, which halves the "
        "sides 3 times (sample 'a'); use inputs of at least 8 px or a model with depth 2 "
        "(model.depth)"
    )
    # training: one bottleneck value per channel cannot be batch-normalised
    with pytest.raises(SpecError, match="leaves a 1x1 bottleneck"):
        check_input_size(8, 8, "key", depth=3, training=True, error=SpecError)
    check_input_size(8, 16, "key", depth=3, training=True)


def _config(tmp_path, size: int, depth: int, crop: int) -> str:
    write_mapinwild(tmp_path / "data", n=6, size=size, splits=(3, 2, 1))
    cfg = tiny_config(tmp_path / "data", crop_size=crop, epochs=1)
    cfg["model"]["depth"] = depth
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _cli(argv, capsys) -> str:
    try:
        rc = main(argv)
    except SystemExit as exit_:
        rc = exit_.code
    assert rc == 2
    return _one_line(capsys.readouterr().err)


def test_fit_refuses_a_crop_too_small_for_the_depth(tmp_path, capsys) -> None:
    cfg = _config(tmp_path, size=64, depth=5, crop=16)
    line = _cli(["fit", "-q", "--config", cfg, "--out", str(tmp_path / "run")], capsys)
    assert line == (
        "modalens: error: a 16x16 px input is below the 32 px minimum side of a depth-5 U-Net, "
        "which halves the sides 5 times (key 'train.crop_size'); set crop_size: 64 or more "
        "(0: whole scenes) or model.depth: 3"
    )
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_fit_refuses_scenes_too_small_for_the_depth(tmp_path, capsys) -> None:
    cfg = _config(tmp_path, size=16, depth=5, crop=0)
    line = _cli(["fit", "-q", "--config", cfg, "--out", str(tmp_path / "run")], capsys)
    assert line.startswith("modalens: error: a 16x16 px input is below the 32 px minimum side")
    assert "of the train split); use inputs of at least 64 px or a model with depth 3" in line


def test_test_refuses_a_scene_too_small_for_the_run(tmp_path, capsys) -> None:
    cfg = _config(tmp_path, size=32, depth=2, crop=16)
    run = tmp_path / "run"
    assert main(["fit", "-q", "--config", cfg, "--out", str(run)]) in (0, None)
    shutil.rmtree(tmp_path / "data")  # the same ids, now 3 px scenes
    write_mapinwild(tmp_path / "data", n=6, size=3, splits=(3, 2, 1))
    line = _cli(["test", "-q", str(run)], capsys)
    assert line == (
        "modalens: error: a 3x3 px input is below the 4 px minimum side of a depth-2 U-Net, "
        "which halves the sides 2 times (sample '6' of the test split); use inputs of at "
        "least 4 px or a model with depth 1 (model.depth)"
    )
    # dense predictions pad a small scene up to the model's multiple: no error there
    out = tmp_path / "pred"
    argv = ["predict", "-q", str(run), "--out", str(out), "--tile", "16", "--overlap", "4"]
    assert main(argv) in (0, None)
    assert (out / "6.tif").is_file()


def test_fit_refuses_small_scenes_before_writing(tmp_path, capsys) -> None:
    cfg = _config(tmp_path, size=16, depth=5, crop=0)
    run = tmp_path / "run"
    line = _cli(["fit", "-q", "--config", cfg, "--out", str(run)], capsys)
    assert "(sample '1' of the train split)" in line
    assert not run.exists() or not any(run.iterdir())  # nothing written: rerun the same --out
