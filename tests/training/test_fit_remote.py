"""A run whose data root is a URL: COGs served over loopback HTTP train exactly like local files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import rasterio
from helpers import tiny_config
from rangeserver import RangeServer

from modalens.data import synthetic
from modalens.errors import SpecError
from modalens.training import fit, load_config, load_run


def test_one_epoch_fit_over_http_equals_the_local_fit(tmp_path: Path) -> None:
    root = synthetic.generate_synthetic(
        tmp_path / "data", samples=6, size=64, progress=False, cog=True
    )
    local = fit(tiny_config(root, epochs=1), out=tmp_path / "local", progress=False)
    with RangeServer(root) as srv:
        try:
            with rasterio.open(f"/vsicurl/{srv.url}/NI/100000.tif"):
                pass
        except rasterio.errors.RasterioError as exc:
            pytest.skip(f"GDAL here cannot read over HTTP (no curl support?): {exc}")
        srv.reset()  # plain GDAL probed for side-car files and listed the folder
        remote = fit(tiny_config(srv.url, epochs=1), out=tmp_path / "remote", progress=False)
        assert srv.bytes_served() > 0
        # no folder listings, no side-car probes: only the rasters and the split file
        assert {r.status for r in srv.requests()} <= {200, 206}
        assert {Path(r.path).suffix for r in srv.requests()} == {".tif", ".csv"}
        url = srv.url
        assert str(load_run(remote).spec.root) == url
    a = pd.read_csv(local / "metrics.csv").drop(columns="seconds")
    b = pd.read_csv(remote / "metrics.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(a, b)
    # the same statistics; only the files' identity differs (remote files count by name only)
    same, other = (json.loads((f / "stats.json").read_text()) for f in (local, remote))
    assert same.pop("files") != other.pop("files") and same == other
    assert load_config(remote / "config.yaml").data["root"] == url


def test_credentials_in_a_run_config_are_refused() -> None:
    cfg = {"name": "x", "data": {"preset": "mapinwild", "root": "s3://b/d"}}
    cfg["train"] = {"secret_key": "abc"}
    with pytest.raises(SpecError, match="credentials do not belong.*train.secret_key"):
        load_config(cfg)
