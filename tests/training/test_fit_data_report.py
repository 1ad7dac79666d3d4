"""``fit`` refuses leaked ids, reports masking per split and records its normalisation."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from helpers import tiny_config

from modalens.data.presets import mapinwild_spec
from modalens.data.stats import with_statistics
from modalens.errors import DataError
from modalens.training import fit


def _leak(root):
    df = pd.read_csv(root / "split_IDs.csv", dtype=str)
    df.loc[0, "test"] = df.loc[0, "train"]  # a train id also in test
    df.to_csv(root / "split_IDs.csv", index=False)
    return str(int(float(df.loc[0, "train"])))


def test_fit_refuses_train_test_leakage(mapinwild_root, tmp_path):
    sid = _leak(mapinwild_root)
    with pytest.raises(DataError) as exc:
        fit(tiny_config(mapinwild_root, epochs=1), out=tmp_path / "run", progress=False)
    msg = str(exc.value)
    assert "\n" not in msg and "train and test splits (leakage)" in msg and repr(sid) in msg
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_fit_reports_masking_and_normalisation(mapinwild_root, tmp_path, capsys):
    _leak(mapinwild_root)
    cfg = tiny_config(mapinwild_root, epochs=1, limit_train_batches=1, limit_val_batches=1)
    cfg["data"]["allow_leakage"] = True
    run = fit(cfg, out=tmp_path / "run", progress=True)
    err = capsys.readouterr().err
    assert "warning: 1 id(s) in both the train and test splits" in err
    lines = [x for x in err.splitlines() if x.startswith("masked: ")]
    assert [x.split(":")[1].strip() for x in lines] == ["train", "val", "test"]
    table = pd.read_csv(run / "masking.csv")
    assert list(table.columns[:6]) == [
        "split",
        "samples",
        "pixels",
        "target_invalid",
        "inputs_invalid",
        "masked",
    ]
    assert list(table["samples"]) == [6, 2, 2]
    # the fixture's NI has ~10 % NaN: that share leaves the loss, no input is invalid
    assert 0.05 < table["masked"].iloc[0] < 0.15 and (table["inputs_invalid"] == 0).all()
    stats = json.loads((run / "stats.json").read_text())
    assert stats["normalization"] == {"s1": "train split", "viirs": "train split"}
    # the published constants are used (and recorded) only when asked for
    published = mapinwild_spec(mapinwild_root, stats="published")
    spec, _ = with_statistics(published, tmp_path / "stats.json", progress=False)
    assert spec.modality("viirs").normalization.mean == (2.0382,)
    stats2 = json.loads((tmp_path / "stats.json").read_text())
    assert stats2["normalization"] == {"s1": "given constants", "viirs": "given constants"}
    assert stats2["modalities"]["viirs"]["mean"] == stats["modalities"]["viirs"]["mean"]
