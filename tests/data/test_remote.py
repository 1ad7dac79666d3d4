"""Dataset roots behind URLs: COGs read over a loopback HTTP server with range requests.

The server (tests/rangeserver.py) serves a ``synth --cog`` dataset on 127.0.0.1 and counts the
bytes it sends, so a crop read can be checked to fetch only the tiles it needs. Nothing here
touches the network beyond loopback.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rangeserver import RangeServer

from modalens.data import synthetic
from modalens.data.presets import mapinwild_spec
from modalens.data.rasters import read_raster
from modalens.data.reader import SampleReader
from modalens.data.remote import (
    GDAL_OPTIONS,
    RemotePath,
    as_location,
    gdal_options,
    is_remote,
    resolve_root,
)
from modalens.data.samples import discover_ids, sample_ids
from modalens.data.specfile import resolve_spec, spec_from_dict
from modalens.errors import DataError, SpecError

S2 = "s2_temporal_subset/100000.tif"
#: bytes GDAL rounds a range request up to (CPL_VSIL_CURL_CHUNK_SIZE, GDAL's default 16 KB)
CHUNK = 16384


@pytest.fixture(scope="module")
def cog_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 scenes of 256 px as COGs with 128 px tiles (2 x 2 tiles per file)."""
    base = tmp_path_factory.mktemp("cog")
    return synthetic.generate_synthetic(
        base / "data", samples=4, size=256, progress=False, cog=True
    )


@pytest.fixture()
def server(cog_root: Path):
    with RangeServer(cog_root) as srv:
        try:  # plain rasterio: does this GDAL speak HTTP at all?
            with rasterio.open(f"/vsicurl/{srv.url}/VIIRS/100000.tif"):
                pass
        except rasterio.errors.RasterioError as exc:
            pytest.skip(f"GDAL here cannot read over HTTP (no curl support?): {exc}")
        srv.reset()
        yield srv


def _tile_bytes(path: Path) -> dict[tuple[int, int], int]:
    """Compressed size of every tile (row, col) of band 1 (pixel interleaved: all bands)."""
    with rasterio.open(path) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        rows = -(-ds.height // ds.block_shapes[0][0])
        cols = -(-ds.width // ds.block_shapes[0][1])
        return {
            (r, c): int(ds.get_tag_item(f"BLOCK_SIZE_{c}_{r}", "TIFF", bidx=1))
            for r in range(rows)
            for c in range(cols)
        }


def test_crop_over_http_equals_local_and_fetches_only_its_tile(
    server: RangeServer, cog_root: Path
) -> None:
    tiles = _tile_bytes(cog_root / S2)
    assert len(tiles) == 4  # 256 px, 128 px tiles
    size = (cog_root / S2).stat().st_size
    window = (10, 20, 64, 64)  # inside tile (0, 0)
    remote = read_raster(f"{server.url}/{S2}", window=window)
    local = read_raster(cog_root / S2, window=window)
    np.testing.assert_array_equal(remote, local)
    crop_bytes = server.bytes_served(S2)
    # header (GDAL_INGESTED_BYTES_AT_OPEN) + the one tile, each rounded up to whole chunks
    bound = int(GDAL_OPTIONS["GDAL_INGESTED_BYTES_AT_OPEN"]) + tiles[0, 0] + 2 * CHUNK
    assert 0 < crop_bytes <= bound
    assert crop_bytes < 0.5 * size, (crop_bytes, size)
    assert all(r.status in (200, 206) for r in server.requests())
    assert all(r.range is not None for r in server.requests() if r.method == "GET")
    # a whole-file read fetches the rest (GDAL's cache holds the crop's bytes: each server has
    # its own port, so its URLs start with an empty cache)
    server.reset()
    whole = read_raster(f"{server.url}/{S2}")
    np.testing.assert_array_equal(whole, read_raster(cog_root / S2))
    assert crop_bytes + server.bytes_served(S2) >= size


def test_sample_reader_over_http_equals_local(server: RangeServer, cog_root: Path) -> None:
    local = SampleReader(mapinwild_spec(cog_root))
    remote = SampleReader(mapinwild_spec(server.url))
    assert isinstance(remote.spec.root, RemotePath)
    assert sample_ids(remote.spec) == sample_ids(local.spec)
    for sid in sample_ids(local.spec)["train"][:2]:
        win = (100, 90, 32, 48)
        a, b = local.read_raw(sid, win), remote.read_raw(sid, win)
        assert list(a) == list(b) == ["s2", "s1", "esa_wc", "viirs"]
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])
        for x, y in zip(local.read_target(sid, win), remote.read_target(sid, win), strict=True):
            np.testing.assert_array_equal(x, y)
    assert server.bytes_served() > 0


def test_missing_file_is_a_one_line_error_with_the_url(server: RangeServer) -> None:
    with pytest.raises(DataError, match=r"HTTP 404.*127\.0\.0\.1.*nope\.tif") as err:
        read_raster(f"{server.url}/s1/nope.tif")
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="split file not found"):
        sample_ids(mapinwild_spec(f"{server.url}/elsewhere"))


def test_denied_file_asks_for_credentials_in_the_environment(server: RangeServer) -> None:
    server.deny("split_IDs.csv")
    with pytest.raises(DataError, match=r"access denied \(HTTP 403\).*environment"):
        sample_ids(mapinwild_spec(server.url))
    server.deny("NI/100001.tif")
    with pytest.raises(DataError, match=r"access denied.*NI/100001\.tif.*environment"):
        read_raster(f"{server.url}/NI/100001.tif")


def test_refused_connection_is_a_one_line_error() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError, match=rf"cannot reach the server.*127\.0\.0\.1:{port}") as err:
        read_raster(f"http://127.0.0.1:{port}/x.tif")
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="cannot reach the server"):
        sample_ids(mapinwild_spec(f"http://127.0.0.1:{port}/data"))


def test_credentials_in_a_spec_are_refused() -> None:
    spec = {"preset": "mapinwild", "root": "s3://bucket/data", "aws_secret_access_key": "x"}
    with pytest.raises(SpecError, match="credentials do not belong.*environment"):
        spec_from_dict(spec, "cfg.yaml")
    nested = {"preset": "mapinwild", "root": "s3://b/d", "preset_options": {"token": "x"}}
    with pytest.raises(SpecError, match="preset_options.token"):
        spec_from_dict(nested)
    with pytest.raises(SpecError, match="user name or password"):
        mapinwild_spec("https://me:secret@example.org/data")


def test_url_forms_map_to_gdal_virtual_file_systems() -> None:
    cases = {
        "s3://bucket/data/": ("s3://bucket/data", "/vsis3/bucket/data/s1/1.tif"),
        "/vsis3/bucket/data": ("s3://bucket/data", "/vsis3/bucket/data/s1/1.tif"),
        "gs://bucket/d": ("gs://bucket/d", "/vsigs/bucket/d/s1/1.tif"),
        "HTTPS://host/a": ("https://host/a", "/vsicurl/https://host/a/s1/1.tif"),
        "/vsicurl/http://h:8/a": ("http://h:8/a", "/vsicurl/http://h:8/a/s1/1.tif"),
    }
    for given, (url, vsi) in cases.items():
        root = as_location(given)
        assert isinstance(root, RemotePath) and str(root) == url
        assert (root / "s1/1.tif").vsi() == vsi
    p = as_location("https://host/a") / "x y/1.tif"
    assert (p.name, p.suffix, str(p.parent)) == ("1.tif", ".tif", "https://host/a/x%20y")
    assert not is_remote("/data/local") and not is_remote("s3_folder/x")
    assert resolve_root("s3://b/d/") == "s3://b/d"
    assert resolve_root("rel", Path("/base")) == "/base/rel"
    with pytest.raises(SpecError, match="unsupported GDAL virtual file system"):
        as_location("/vsiaz/container/x")


def test_operations_that_list_need_a_local_root() -> None:
    spec = mapinwild_spec("https://example.org/data")
    with pytest.raises(DataError, match="needs a local dataset root, not a URL"):
        discover_ids(spec)


def test_gdal_options_yield_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "9")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://minio.local:9000")
    monkeypatch.delenv("AWS_S3_ENDPOINT", raising=False)
    opts = gdal_options()
    assert "GDAL_HTTP_MAX_RETRY" not in opts  # the environment's 9 wins
    assert opts["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR"
    assert (opts["AWS_S3_ENDPOINT"], opts["AWS_HTTPS"]) == ("minio.local:9000", "NO")


def test_synth_cog_has_the_same_values_and_default_files_are_plain(
    tmp_path: Path, cog_root: Path
) -> None:
    plain = synthetic.generate_synthetic(tmp_path / "plain", samples=4, size=256, progress=False)
    for rel in (S2, "NI/100000.tif", "ESA_WC/100001.tif"):
        with rasterio.open(plain / rel) as a, rasterio.open(cog_root / rel) as b:
            assert a.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") != "COG"
            assert b.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            assert b.block_shapes[0] == (128, 128)
            np.testing.assert_array_equal(a.read(), b.read())
            assert (a.descriptions, a.tags(), a.crs) == (b.descriptions, b.tags(), b.crs)
    assert (plain / "split_IDs.csv").read_bytes() == (cog_root / "split_IDs.csv").read_bytes()
    with pytest.raises(SpecError, match="multiple of 16"):
        synthetic.generate_synthetic(
            tmp_path / "bad", samples=3, size=32, cog=True, cog_blocksize=40
        )


def test_resolve_spec_of_a_url_uses_its_split_file(server: RangeServer) -> None:
    spec = resolve_spec(server.url)
    assert spec.name == "mapinwild" and str(spec.root) == server.url
    assert os.path.basename(str(spec.root / spec.split.file)) == "split_IDs.csv"
