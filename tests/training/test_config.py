"""Run configs: defaults, typed validation with one-line errors, overrides, round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helpers import tiny_config

from modalens.errors import SpecError
from modalens.training import RunConfig, load_config, spec_from_config
from modalens.training.module import build_module


@pytest.fixture
def synth_root(tmp_path: Path) -> Path:
    """A dataset root (configs do not read the data)."""
    root = tmp_path / "synth"
    root.mkdir()
    return root


def test_config_defaults_follow_the_paper(synth_root: Path) -> None:
    cfg = load_config({"data": {"preset": "mapinwild", "root": str(synth_root)}})
    t = cfg.train
    assert cfg.task == "regression"
    assert (t.lr, t.batch_size, t.loss, t.optimizer, t.patience) == (
        1e-4,
        16,
        "mse",
        "adam",
        40,
    )
    assert t.scheduler.model_dump() == {
        "name": "cosine_warm_restarts",
        "T_0": 3,
        "T_mult": 1,
        "eta_min": 0,
    }
    assert t.precision == "fp32"
    assert cfg.model.model_dump() == {"base_width": 64, "depth": 4}


def test_unknown_config_key_names_key_and_file(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(
        yaml.safe_dump({"data": {"preset": "mapinwild", "root": "x"}, "train": {"epoch": 3}})
    )
    with pytest.raises(SpecError) as info:
        load_config(path)
    msg = str(info.value)
    assert "train.epoch" in msg and str(path) in msg and "\n" not in msg


def test_config_rejects_wrong_loss_and_relative_root(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="loss 'ce' is not available for regression"):
        load_config({"data": {"preset": "mapinwild", "root": "x"}, "train": {"loss": "ce"}})
    path = tmp_path / "cfg" / "run.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump({"data": {"preset": "mapinwild", "root": "../data"}}))
    cfg = load_config(path)
    assert cfg.data["root"] == str((tmp_path / "data").resolve())


def test_root_override_applies_to_a_spec_file_and_run_config_is_self_contained(
    tmp_path: Path, synth_root: Path
) -> None:
    spec_file = tmp_path / "specs" / "data.yaml"
    spec_file.parent.mkdir()
    spec_file.write_text(yaml.safe_dump({"preset": "mapinwild", "root": "nowhere"}))
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump({"data": "specs/data.yaml"}))
    cfg = load_config(cfg_path)
    assert cfg.data["root"] == str((spec_file.parent / "nowhere").resolve())
    cfg = load_config(cfg_path, overrides={"data": {"root": str(synth_root)}})
    assert cfg.data == {"preset": "mapinwild", "root": str(synth_root.resolve())}
    spec_file.unlink()  # the resolved config no longer needs the spec file
    assert load_config(cfg).data["root"] == str(synth_root.resolve())


def test_bad_augmentation_option_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_config(
            {
                "data": {"preset": "mapinwild", "root": "x"},
                "train": {"augment": {"blur": {"p": 0.5, "kernel_size": 4}}},
            }
        )
    msg = str(info.value)
    assert "train.augment" in msg and "\n" not in msg


def test_modality_selection_sets_input_channels(synth_root: Path) -> None:
    cfg = load_config({**tiny_config(synth_root), "drop": ["viirs"]})
    spec = spec_from_config(cfg)
    assert spec.modality_names == ["s2", "s1", "esa_wc"]
    assert build_module(cfg, spec).model.in_channels == 13


def _error(config: dict, tmp_path: Path) -> str:
    """The one-line message of loading ``config`` from a YAML file (asserts it is one line and
    names the file)."""
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(SpecError) as info:
        load_config(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    return msg


@pytest.mark.parametrize(
    ("train", "expected"),
    [
        ({"lr": "fast"}, "train.lr must be a number, got 'fast' (key 'train.lr' in"),
        ({"lr": 0}, "train.lr must be > 0"),
        ({"epochs": 2.5}, "train.epochs must be an integer, got 2.5 (key 'train.epochs'"),
        ({"batch_size": True}, "train.batch_size must be an integer"),
        ({"patience": -1}, "train.patience must be >= 0, got -1"),
        ({"scheduler": {"T_0": 0}}, "train.scheduler.T_0 must be >= 1"),
        ({"scheduler": {"name": "step"}}, "unknown scheduler 'step' (key 'train.scheduler.name'"),
        ({"optimizer": "RMSprop"}, "unknown optimizer 'rmsprop' (key 'train.optimizer'"),
        ({"channels_last": "yes"}, "train.channels_last must be true or false"),
        ({"precision": "fp64"}, "unknown precision 'fp64' (key 'train.precision'"),
        ({"devices": 0}, "train.devices must be an integer >= 1 or 'auto', got 0"),
        ({"devices": "many"}, "train.devices must be an integer >= 1 or 'auto', got 'many'"),
        ({"strategy": "fsdp"}, "unknown strategy 'fsdp' (key 'train.strategy'"),
        ({"num_nodes": 0}, "train.num_nodes must be >= 1, got 0"),
        ({"sync_batchnorm": "yes"}, "train.sync_batchnorm must be true or false"),
        ({"deterministic": "false"}, "train.deterministic must be true, false, auto or warn"),
        ({"limit_val_batches": 0}, "train.limit_val_batches must be a positive number"),
        ({"augment": [1]}, "train.augment must be a mapping of augmentation options"),
        ({"scheduler": 3}, "config key 'train.scheduler' must be a mapping"),
    ],
)
def test_bad_value_is_one_line_naming_the_dotted_key_and_file(
    tmp_path: Path, train: dict, expected: str
) -> None:
    msg = _error({"data": {"preset": "mapinwild", "root": "x"}, "train": train}, tmp_path)
    assert expected in msg


def test_unknown_keys_list_the_allowed_keys_of_their_section(tmp_path: Path) -> None:
    data = {"preset": "mapinwild", "root": "x"}
    msg = _error({"data": data, "model": {"width": 3}}, tmp_path)
    assert "unknown config key 'model.width'" in msg
    assert msg.endswith("allowed keys here: base_width, depth")
    msg = _error({"data": data, "train": {"scheduler": {"gamma": 0.5}}}, tmp_path)
    assert "'train.scheduler.gamma'" in msg and "T_0, T_mult, eta_min, name" in msg
    msg = _error({"data": data, "epochs": 3}, tmp_path)
    assert "unknown config key 'epochs'" in msg and "model, name, task, train, use" in msg
    assert "config key 'train' must be a mapping" in _error({"data": data, "train": 5}, tmp_path)


def test_task_that_does_not_fit_the_target_names_the_task_key(tmp_path: Path) -> None:
    msg = _error({"data": {"preset": "mapinwild", "root": "x"}, "task": "segmentation"}, tmp_path)
    assert "task 'segmentation' does not fit the 'continuous' target" in msg
    assert "key 'task' in" in msg


def test_config_is_typed_and_its_yaml_reads_back(synth_root: Path, tmp_path: Path) -> None:
    cfg = load_config(
        {**tiny_config(synth_root, lr="2e-3", scheduler={"name": None}), "use": "s2"},
        overrides={"train": {"epochs": 3}},
    )
    assert isinstance(cfg, RunConfig)
    assert cfg.train.lr == 2e-3 and cfg.train.epochs == 3 and cfg.use == ["s2"]
    assert cfg.train.scheduler.name == "none" and cfg.train.loss == "mse"
    assert cfg.name == "tiny" and cfg.task == "regression"
    path = tmp_path / "config.yaml"
    path.write_text(cfg.to_yaml())
    again = load_config(path)
    assert again == cfg and again.to_dict() == cfg.to_dict()
    assert list(yaml.safe_load(path.read_text())) == [
        "name", "data", "use", "drop", "task", "model", "train"
    ]  # fmt: skip


def test_loss_default_follows_the_target(synth_root: Path) -> None:
    seg = {"preset": "mapinwild", "root": str(synth_root), "preset_options": {"target": "mask"}}
    assert load_config({"data": seg}).train.loss == "ce"
    assert load_config({**tiny_config(synth_root, loss="MAE")}).train.loss == "mae"
