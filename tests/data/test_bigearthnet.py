"""The real BigEarthNet-MM example (../shared/data/bigearthnet-example beside the repo)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio

import modalens.data as data
from modalens.data import checks, presets, stats
from modalens.errors import DataError

ROOT = Path(__file__).resolve().parents[3] / "shared" / "data" / "bigearthnet-example"
pytestmark = pytest.mark.skipif(
    not ROOT.is_dir(), reason=f"BigEarthNet example data not found at {ROOT}"
)


@pytest.fixture(scope="module")
def spec():
    spec = presets.bigearthnet_spec(ROOT)
    train = data.sample_ids(spec)["train"]
    return stats.apply_statistics(spec, stats.compute_statistics(spec, train, progress=False))


def test_real_patches_stack_to_14_channels_with_43_labels(spec):
    ids = data.sample_ids(spec)
    assert sum(len(v) for v in ids.values()) == 6 and all(ids.values())
    ds = data.MultimodalDataset(spec, "train")
    item = ds[0]
    assert item["image"].shape == (14, 120, 120)
    assert item["target"].shape == (43,) and item["target"].dtype.is_floating_point
    assert item["valid"].all() and np.isfinite(item["image"].numpy()).all()
    sid = item["id"]
    meta = ROOT / "BigEarthNet-S2-Example" / sid / f"{sid}_labels_metadata.json"
    labels = json.loads(meta.read_text())["labels"]
    got = [presets.BIGEARTHNET_43_LABELS[k] for k in np.flatnonzero(item["target"].numpy())]
    assert sorted(got) == sorted(labels)


def test_bands_resampled_onto_the_10m_grid_and_s1_paired(spec):
    reader = data.SampleReader(spec)
    sid = data.sample_ids(spec)["test"][0]
    grid = reader.grid(sid)
    assert (grid.width, grid.height) == (120, 120) and grid.res == (10.0, 10.0)
    img = reader.read(sid)["image"]
    folder = ROOT / "BigEarthNet-S2-Example" / sid
    with rasterio.open(folder / f"{sid}_B02.tif") as ds:
        b02 = ds.read(1).astype(np.float64)
    np.testing.assert_allclose(img[1], b02 / 10000, rtol=1e-5)
    with rasterio.open(folder / f"{sid}_B05.tif") as ds:  # 20 m, 60x60
        b05 = ds.read(1).astype(np.float64)
    assert b05.shape == (60, 60)
    up = img[4].astype(np.float64) * 10000
    # bilinear upsampling keeps the 2x2 block means close to the 20 m values
    blocks = up.reshape(60, 2, 60, 2).mean(axis=(1, 3))
    assert np.abs(blocks - b05)[2:-2, 2:-2].mean() < 0.05 * b05.mean()
    s1 = reader.index[sid]["s1"]
    with rasterio.open(ROOT / "BigEarthNet-S1-Example" / s1 / f"{s1}_VV.tif") as ds:
        vv = ds.read(1).astype(np.float64)
    n = spec.modality("s1").normalization
    np.testing.assert_allclose(img[12], (vv - n.mean[0]) / n.std[0], rtol=1e-4, atol=1e-4)


def test_data_check_passes_on_the_real_example():
    spec = presets.bigearthnet_spec(ROOT)
    assert not checks.has_errors(checks.check_dataset(spec, progress=False))


def test_official_folder_names_are_found(bigearthnet_root, tmp_path):
    # the official archives unpack to BigEarthNet-v1.0 (S2) and BigEarthNet-S1-v1.0 (links,
    # not copies, of the example)
    (tmp_path / "BigEarthNet-v1.0").symlink_to(bigearthnet_root / "BigEarthNet-S2-Example")
    (tmp_path / "BigEarthNet-S1-v1.0").symlink_to(bigearthnet_root / "BigEarthNet-S1-Example")
    spec = presets.bigearthnet_spec(tmp_path)
    ids = data.sample_ids(spec)
    assert sum(len(v) for v in ids.values()) == 6
    spec = stats.apply_statistics(
        spec, stats.compute_statistics(spec, ids["train"][:1], progress=False)
    )
    assert data.SampleReader(spec).read(ids["test"][0])["image"].shape == (14, 120, 120)


def test_missing_s1_folder_names_the_accepted_names(tmp_path):
    (tmp_path / "BigEarthNet-v1.0").mkdir()
    spec = presets.bigearthnet_spec(tmp_path)
    with pytest.raises(DataError) as e:
        data.sample_ids(spec)
    assert "BigEarthNet-S1-v1.0" in str(e.value)


def test_scene_labels_are_never_cropped(spec):
    # a 64 px random crop of a 120 px scene-labelled patch would no longer be what the label names
    ds = data.MultimodalDataset(spec, "train", crop_size=64)
    with pytest.warns(UserWarning, match="crop_size 64 ignored: a scene label"):
        item = ds[0]
    assert item["image"].shape[-2:] == (120, 120) and tuple(item["window"]) == (0, 0, 120, 120)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one warning per dataset, none for whole patches
        ds[1]
        data.MultimodalDataset(spec, "train", crop_size=0)[0]
        data.MultimodalDataset(spec, "train")[0]  # the preset's 120 px


def _linked_root(tmp_path: Path, s1: bool = True) -> Path:
    """A BigEarthNet v1 root in tmp_path whose patch folders link to the example's."""
    root = tmp_path / "ben"
    root.mkdir()
    for name in ("BigEarthNet-S2-Example", *(("BigEarthNet-S1-Example",) if s1 else ())):
        (root / name).symlink_to(ROOT / name, target_is_directory=True)
    return root


@pytest.mark.parametrize("prefix", ["", "splits/bigearthnet-"])
def test_official_v1_split_files_give_the_split(tmp_path: Path, prefix: str, capsys) -> None:
    root = _linked_root(tmp_path)
    random_split = data.sample_ids(presets.bigearthnet_spec(root))
    s2 = sorted(sum(random_split.values(), []))
    pairs = {
        i: m["s1"] for i, m in data.samples.index_table(presets.bigearthnet_spec(root)).items()
    }
    chosen = {"train": s2[:4], "val": s2[4:5], "test": s2[5:]}
    (root / "splits").mkdir()
    for split, ids in chosen.items():  # S2name,S1name per line, no header (BigEarthNet-MM)
        path = root / f"{prefix}{split}.csv"
        path.write_text("".join(f"{i},{pairs[i]}\n" for i in ids))
    spec = presets.bigearthnet_spec(root)
    assert spec.split.kind == "lists" and data.sample_ids(spec) == chosen
    said = capsys.readouterr()
    assert "bigearthnet: official split (" in said.out + said.err
    other = presets.get_preset("bigearthnet", root, split="random")
    assert sorted(sum(data.sample_ids(other).values(), [])) == s2


def test_missing_s1_folder_names_what_was_looked_for(tmp_path: Path) -> None:
    root = _linked_root(tmp_path, s1=False)
    with pytest.raises(DataError) as err:
        data.sample_ids(presets.bigearthnet_spec(root))
    msg = str(err.value)
    assert "BigEarthNet S1 folder 'BigEarthNet-S1-Example' not found (looked for" in msg
    assert "point root at" not in msg and str(root) in msg and "--option s1_folder" in msg


def test_fit_preset_and_root_train_one_epoch(tmp_path: Path) -> None:
    from modalens.cli import main

    root = _linked_root(tmp_path)
    out = tmp_path / "run"
    argv = ["fit", "--preset", "bigearthnet", "--root", str(root), "--epochs", "1", "-q"]
    assert main([*argv, "--base-width", "4", "--out", str(out)]) == 0
    assert (out / "metrics.csv").is_file() and (out / "dataset.yaml").is_file()


def test_v1_labels_onto_the_19_class_nomenclature(tmp_path: Path) -> None:
    from modalens.data.presets.bigearthnet import BIGEARTHNET_43_LABELS
    from modalens.data.presets.bigearthnet_v2 import BIGEARTHNET_19_LABELS, V1_TO_19

    # the official table covers every 43-class label and reaches every one of the 19
    assert set(V1_TO_19) == set(BIGEARTHNET_43_LABELS)
    assert {v for v in V1_TO_19.values() if v} == set(BIGEARTHNET_19_LABELS)
    s43 = presets.bigearthnet_spec(ROOT)
    s19 = presets.get_preset("bigearthnet", ROOT, labels="19")
    assert s19.target.n_outputs == 19 and s43.target.n_outputs == 43
    for sid in sum(data.sample_ids(s43).values(), []):
        raw = json.loads(data.SampleReader(s43).target_path(sid).read_text())["labels"]
        want = {V1_TO_19[lab] for lab in raw} - {""}
        got = data.SampleReader(s19).scene_labels(sid)
        assert {BIGEARTHNET_19_LABELS[k] for k in np.flatnonzero(got)} == want, sid
    # the spec keeps its map through YAML
    again = data.spec_from_dict(s19.to_dict())
    assert dict(again.target.label_map) == V1_TO_19


def test_a_label_outside_the_label_map_is_one_line(tmp_path: Path) -> None:
    from dataclasses import replace

    s19 = presets.get_preset("bigearthnet", ROOT, labels="19")
    short = replace(s19.target, label_map=(("Pastures", "Pastures"),))
    spec = replace(s19, targets={"main": short})
    reader = data.SampleReader(spec)
    ids = sum(data.sample_ids(s19).values(), [])
    labels = {i: json.loads(reader.target_path(i).read_text())["labels"] for i in ids}
    sid = next(i for i, labs in labels.items() if set(labs) - {"Pastures"})
    with pytest.raises(DataError, match=r"is not in target.label_map"):
        data.SampleReader(spec).scene_labels(sid)
    with pytest.raises(Exception, match="choose auto, 19 or 43"):
        presets.get_preset("bigearthnet", ROOT, labels="20")
