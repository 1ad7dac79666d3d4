"""Cached statistics are reused only for the files they were computed from: a rewritten train
file (same name) forces a recomputation."""

from __future__ import annotations

import json

import numpy as np
import rasterio

from modalens.data import presets, sample_ids, stats


def test_a_rewritten_train_file_is_not_served_from_the_cache(mapinwild_root, tmp_path) -> None:
    spec = presets.mapinwild_spec(mapinwild_root)
    train = sample_ids(spec)["train"]
    cache = tmp_path / "statistics.json"
    first = stats.compute_statistics(spec, train, cache=cache, progress=False)
    assert set(json.loads(cache.read_text())["files"]) >= {"s1", "s2", "target"}
    assert stats.compute_statistics(spec, train, cache=cache, progress=False) == first  # reused
    path = mapinwild_root / "s1" / f"{train[0]}.tif"
    with rasterio.open(path, "r+") as ds:  # the same file, other values
        ds.write(ds.read() + np.float32(3.0))
    again = stats.compute_statistics(spec, train, cache=cache, progress=False)
    assert again.mean("s1")[0] > first.mean("s1")[0]
    assert not first.matches(spec, train) and again.matches(spec, train)
