"""The ``nodata`` strategy: a value no class maps to on categorical channels, the mean elsewhere."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import GROUPS, batch, tiny_unet

from modalens.attribution import AttributionOptions, OcclusionEngine, attribute
from modalens.attribution.run import nodata_code, run_nodata
from modalens.data import Normalization, presets
from modalens.data.reader import normalize
from modalens.errors import SpecError


def _class_codes(m) -> np.ndarray:  # noqa: ANN001 - a Modality
    raw = np.asarray(m.classes, dtype=np.float32).reshape(1, -1, 1)
    return np.asarray(normalize(m, raw), dtype=np.float64).reshape(-1)


def test_nodata_fill_is_no_class_on_categorical_channels_and_the_mean_elsewhere(
    mapinwild_root: Path,
) -> None:
    spec = presets.mapinwild_spec(mapinwild_root)
    slices = spec.channel_slices()
    mean = [0.1 * i for i in range(spec.n_channels)]
    values = run_nodata(spec, mean)
    assert len(values) == spec.n_channels
    wc = spec.modality("esa_wc")
    fill = values[slices["esa_wc"]][0]
    codes = _class_codes(wc)
    assert np.abs(codes - fill).min() > 1e-3  # no WorldCover class maps to it
    assert fill < codes.min()  # the spec's no-data value 0 lies below class 10
    assert fill == pytest.approx((0.0 - 10.0) / 90.0)
    for name in ("s2", "s1", "viirs"):
        assert values[slices[name]] == pytest.approx(mean[slices[name]])


def test_nodata_code_when_the_spec_has_no_usable_nodata(mapinwild_root: Path) -> None:
    wc = presets.mapinwild_spec(mapinwild_root).modality("esa_wc")
    assert nodata_code(replace(wc, nodata=None)) == 5.0  # one class step (95 -> 100) below 10
    assert nodata_code(replace(wc, nodata=40.0)) == 5.0  # 40 is a class
    assert nodata_code(replace(wc, classes=(3,), nodata=None)) == 2.0


def test_nodata_fill_of_a_one_hot_modality_activates_no_class(mapinwild_root: Path) -> None:
    spec = presets.mapinwild_spec(mapinwild_root)
    wc = spec.modality("esa_wc")
    spec = spec.with_modality(replace(wc, normalization=Normalization("onehot")))
    with pytest.raises(SpecError, match="continuous modality 's2' is its train mean"):
        run_nodata(spec, None)  # no silent 0 for the continuous modalities
    values = run_nodata(spec, [0.5] * spec.n_channels)
    sl = spec.channel_slices()["esa_wc"]
    assert sl.stop - sl.start == len(wc.classes)
    assert values[sl] == [0.0] * len(wc.classes)


def test_nodata_strategy_needs_its_values_and_scores_with_them() -> None:
    model, b = tiny_unet(), batch(2)
    with pytest.raises(SpecError, match="nodata"):
        attribute(model, [b], GROUPS, strategies="nodata")
    fill = torch.tensor([0.0, 0.0, 0.0, 0.0, -0.1, 0.5])
    eng = OcclusionEngine(model, GROUPS, AttributionOptions(strategies="nodata", nodata=fill))
    made = eng.make_fill("nodata", 0, b["id"], b["image"])
    assert made.kind == "constant"
    assert made.value.flatten().tolist() == pytest.approx(fill.tolist())
    scores = attribute(model, [b], GROUPS, strategies="nodata", nodata=fill)
    assert scores["value"].notna().all() and (scores["strategy"] == "nodata").all()
    with pytest.raises(SpecError, match="3 values for 6 channels"):
        attribute(model, [b], GROUPS, strategies="nodata", nodata=[0.0] * 3)
