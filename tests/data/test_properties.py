"""Property-based tests (hypothesis): spec parsing, channel slicing, per-channel invalid values."""

from __future__ import annotations

import numpy as np
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from modalens.data import spec_from_dict
from modalens.data.rasters import mask_nodata
from modalens.data.reader import INPUT_FILL, fill_invalid
from modalens.data.spec import (
    CATEGORICAL,
    DatasetSpec,
    Modality,
    Normalization,
    SourceFile,
    SplitSpec,
)
from modalens.data.specfile import spec_to_yaml
from modalens.data.targets import TargetSpec

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAME = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8).filter(lambda s: s[0] != "_")
FLOAT = st.floats(-1e4, 1e4, allow_nan=False).map(lambda v: round(v, 3))


@st.composite
def modalities(draw: st.DrawFn, name: str) -> Modality:
    n = draw(st.integers(1, 4))
    bands = tuple(f"b{i}" for i in range(n))
    template = f"{name}/{{id}}.tif"
    if draw(st.booleans()):  # categorical
        classes = tuple(sorted(draw(st.sets(st.integers(0, 255), min_size=2, max_size=6))))
        norm = draw(
            st.sampled_from(
                [Normalization("onehot"), Normalization("ordinal", divisor=90.0, offset=10.0)]
            )
        )
        nodata = draw(st.sampled_from([None, 0.0]))
        src = SourceFile(template, (1,))
        return Modality(name, ("code",), (src,), CATEGORICAL, classes, norm, nodata)
    kind = draw(st.sampled_from(["none", "scale", "standard", "standard-given"]))
    if kind == "scale":
        norm = Normalization("scale", divisor=draw(st.floats(1, 1e4).map(round)), offset=0.0)
    elif kind == "standard":
        norm = Normalization("standard")
    elif kind == "standard-given":
        mean = tuple(draw(st.lists(FLOAT, min_size=n, max_size=n)))
        std = tuple(
            draw(st.lists(st.floats(0.5, 100).map(lambda v: round(v, 3)), min_size=n, max_size=n))
        )
        norm = Normalization("standard", mean=mean, std=std)
    else:
        norm = Normalization("none")
    bands_in_file = draw(st.sampled_from([None, tuple(range(1, n + 1))]))
    nodata = draw(st.sampled_from([None, -9999.0, float("nan")]))
    return Modality(
        name, bands, (SourceFile(template, bands_in_file),), normalization=norm, nodata=nodata
    )


@st.composite
def specs(draw: st.DrawFn) -> DatasetSpec:
    names = draw(st.lists(NAME, min_size=1, max_size=5, unique=True))
    mods = tuple(draw(modalities(n)) for n in names)
    target = TargetSpec(
        kind="continuous",
        source=SourceFile("target/{id}.tif", (1,)),
        scale=draw(st.sampled_from([1.0, 100.0])),
        nodata=draw(st.sampled_from([None, -1.0])),
    )
    split = SplitSpec(
        file=draw(st.sampled_from([None, "split.csv"])),
        ratios=draw(st.sampled_from([(0.8, 0.1, 0.1), (0.6, 0.2, 0.2)])),
        seed=draw(st.integers(0, 99)),
        allow_leakage=draw(st.booleans()),
    )
    return DatasetSpec(
        "ds", "/data/x", mods, target=target, split=split, crop_size=draw(st.integers(8, 512))
    )


def _same_nan(a: object, b: object) -> bool:
    return repr(a) == repr(b)


@FAST
@given(specs())
def test_spec_round_trips_through_yaml(spec: DatasetSpec) -> None:
    again = spec_from_dict(yaml.safe_load(spec_to_yaml(spec)))
    assert again.to_dict() == spec.to_dict() or _same_nan(again.to_dict(), spec.to_dict())
    assert [m.name for m in again.modalities] == [m.name for m in spec.modalities]
    for a, b in zip(again.modalities, spec.modalities, strict=True):
        assert (a.bands, a.kind, a.classes, a.normalization) == (
            b.bands,
            b.kind,
            b.classes,
            b.normalization,
        )
        assert _same_nan(a.nodata, b.nodata)
    assert again.split == spec.split and again.crop_size == spec.crop_size
    assert again.channel_slices() == spec.channel_slices()


@FAST
@given(specs())
def test_modality_slices_partition_the_channels(spec: DatasetSpec) -> None:
    slices = spec.channel_slices()
    assert list(slices) == [m.name for m in spec.modalities]
    covered = []
    for m in spec.modalities:
        sl = slices[m.name]
        assert sl.stop - sl.start == m.n_channels > 0
        covered.extend(range(sl.start, sl.stop))
    assert covered == list(range(spec.n_channels))  # ordered, contiguous, disjoint, complete


VALUES = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1.5, -3.0, 1e30])


@FAST
@given(
    arrays(
        np.float32,
        st.tuples(st.integers(1, 5), st.integers(1, 6), st.integers(1, 6)),
        elements=VALUES,
    )
)
def test_invalid_values_are_filled_per_channel(image: np.ndarray) -> None:
    before = image.copy()
    bad = ~np.isfinite(before)
    valid = fill_invalid(image)
    assert np.isfinite(image).all()
    np.testing.assert_array_equal(image[~bad], before[~bad])  # valid channels keep their values
    assert (image[bad] == INPUT_FILL).all()
    np.testing.assert_array_equal(valid, ~bad.all(axis=0))  # dropped only if every channel is


@FAST
@given(
    arrays(
        np.float32,
        st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6)),
        elements=VALUES,
    ),
    st.lists(st.sampled_from([0.0, 1.5, -3.0]), max_size=2),
)
def test_mask_nodata_makes_every_invalid_value_nan(arr: np.ndarray, nodata: list[float]) -> None:
    before = arr.copy()
    out = mask_nodata(arr, nodata)
    invalid = ~np.isfinite(before) | np.isin(before, nodata)
    np.testing.assert_array_equal(np.isnan(out), invalid)
    np.testing.assert_array_equal(out[~invalid], before[~invalid])
