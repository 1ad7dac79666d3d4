"""What reaches the model through :func:`attribute`: invalid pixels and NaN/inf inputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from helpers import GROUPS, batch, tiny_unet

from modalens.attribution import attribute, modality_shapley
from modalens.attribution.api import NonFiniteInputWarning
from modalens.errors import SpecError


def _scores(b: dict, **kw: object):
    model = tiny_unet()
    return attribute(model, [b], GROUPS, strategies=("zeros",), levels=("output",), **kw)


def test_nan_under_valid_mask_is_masked_without_warning() -> None:
    b = batch(b=2)
    ref = dict(b)
    ref["image"] = b["image"].clone()
    ref["image"][0, :, ~b["valid"][0]] = 0.0
    clean = _scores(ref)
    b2 = dict(b)
    img = b["image"].clone()
    inv = ~b["valid"][0]
    img[0, :, inv] = float("nan")  # NaN only where the mask says invalid
    b2["image"] = img
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _scores(b2)
    assert np.isfinite(got["value"]).all()
    np.testing.assert_allclose(got["value"], clean["value"], rtol=1e-5)


def test_nan_and_inf_outside_mask_are_zeroed_with_one_warning() -> None:
    b = batch(b=2)
    img = b["image"].clone()
    img[0, 1, 0, 0] = float("nan")
    img[1, 2, 1, 1] = float("inf")
    b["image"] = img
    b["valid"] = torch.ones_like(b["valid"])
    with pytest.warns(NonFiniteInputWarning, match="2 NaN/inf input values") as rec:
        got = _scores(b)
    assert len([w for w in rec if w.category is NonFiniteInputWarning]) == 1
    assert np.isfinite(got["value"]).all()
    ref = dict(b)
    ref["image"] = torch.nan_to_num(img, nan=0.0, posinf=0.0)
    np.testing.assert_allclose(got["value"], _scores(ref)["value"], rtol=1e-5)


def test_mask_invalid_zeroes_invalid_pixels_as_training_does() -> None:
    b = batch(b=2)
    ref = dict(b)
    ref["image"] = torch.where(b["valid"][:, None], b["image"], torch.zeros(()))
    a = _scores(dict(b), mask_invalid=True)
    np.testing.assert_allclose(a["value"], _scores(ref)["value"], rtol=1e-5)
    assert not np.allclose(a["value"], _scores(dict(b))["value"])


@pytest.mark.parametrize("groups", ["keys", None])
def test_a_grouping_name_with_a_stacked_tensor_is_a_one_line_spec_error(groups: object) -> None:
    b = batch(b=1)
    with pytest.raises(SpecError, match="needs dict images") as info:
        attribute(tiny_unet(), [b], groups, strategies=("zeros",), levels=("output",))
    assert "\n" not in str(info.value)
    with pytest.raises(SpecError, match="needs dict images"):
        modality_shapley(tiny_unet(), b, groups, strategies=("zeros",), levels=("output",))
