"""``train.precision: auto`` trains bf16-mixed where bf16 is native, fp32 elsewhere, and the
run's config.yaml records the resolved value."""

from __future__ import annotations

import pytest
import yaml
from helpers import tiny_config

from modalens.precision import NATIVE_BF16_ENV
from modalens.training import fit


@pytest.mark.parametrize(("native", "resolved"), [("1", "bf16"), ("0", "fp32")])
def test_train_precision_auto_resolves(mapinwild_root, tmp_path, monkeypatch, native, resolved):
    monkeypatch.setenv(NATIVE_BF16_ENV, native)
    cfg = tiny_config(mapinwild_root, epochs=1, limit_train_batches=1, limit_val_batches=1)
    cfg["train"]["precision"] = "auto"
    run = fit(cfg, out=tmp_path / "run", progress=False)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["train"]["precision"] == resolved
    assert (run / "checkpoints" / "last.ckpt").exists()
