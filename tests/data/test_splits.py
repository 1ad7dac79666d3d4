"""Official split sources: a table with a split column, one list file per split, a CSV with a
column per split; their spec keys and one-line errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from modalens.data.presets import mapinwild_spec
from modalens.data.samples import sample_ids
from modalens.data.spec import SplitSpec
from modalens.data.specfile import load_spec, spec_to_yaml
from modalens.data.splits import parse_split
from modalens.errors import DataError, SpecError

from ..helpers import write_mapinwild

TRAIN, VAL, TEST = ["1", "2", "3", "4"], ["5", "6"], ["7", "8", "9", "10"]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_mapinwild(tmp_path / "data", n=10, size=16)


def _lists(root: Path, pattern_suffix: str = "") -> SplitSpec:
    (root / "splits").mkdir()
    for name, ids in (("train", TRAIN), ("val", VAL), ("test", TEST)):
        lines = [f"{i}{pattern_suffix},{i}_label.tif" for i in ids]
        (root / "splits" / f"{name}.csv").write_text("\n".join(lines) + "\n\n")
    return SplitSpec(lists=tuple((s, f"splits/{s}.csv") for s in ("train", "val", "test")))


def test_list_files_give_each_split_and_a_pattern_takes_the_id_from_each_line(root: Path) -> None:
    split = replace(_lists(root, "_S1Hand.tif"), list_pattern=r"(?P<id>.+)_S1Hand\.tif")
    got = sample_ids(replace(mapinwild_spec(root), split=split))
    assert got == {"train": TRAIN, "val": VAL, "test": TEST}


def test_a_line_that_misses_the_pattern_is_one_line_naming_file_and_line(root: Path) -> None:
    split = replace(_lists(root, "_S1Hand.tif"), list_pattern=r"(?P<id>.+)_S2Hand\.tif")
    with pytest.raises(DataError) as err:
        sample_ids(replace(mapinwild_spec(root), split=split))
    msg = str(err.value)
    assert "line 1 ('1_S1Hand.tif') does not match split.list_pattern" in msg
    assert str(root / "splits" / "train.csv") in msg and "\n" not in msg


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_table_with_a_split_column_gives_each_split(root: Path, suffix: str) -> None:
    rows = [(i, "train") for i in TRAIN] + [(i, "validation") for i in VAL]
    rows += [(i, "test") for i in TEST] + [("11", "excluded")]
    df = pd.DataFrame(rows, columns=["patch_id", "split"])
    path = root / f"metadata{suffix}"
    df.to_parquet(path) if suffix == ".parquet" else df.to_csv(path, index=False)
    split = SplitSpec(table=path.name, table_id="patch_id")
    assert sample_ids(replace(mapinwild_spec(root), split=split)) == {
        "train": TRAIN,
        "val": VAL,
        "test": TEST,
    }


def test_a_table_without_the_named_column_is_one_line(root: Path) -> None:
    pd.DataFrame({"id": TRAIN, "set": "train"}).to_csv(root / "meta.csv", index=False)
    spec = replace(mapinwild_spec(root), split=SplitSpec(table="meta.csv"))
    with pytest.raises(DataError, match=r"split table has no column 'split' \(columns: id, set\)"):
        sample_ids(spec)


def test_a_missing_split_file_names_it_and_never_suggests_another_split(root: Path) -> None:
    spec = replace(mapinwild_spec(root), split=SplitSpec(table="metadata.parquet"))
    with pytest.raises(DataError) as err:
        sample_ids(spec)
    msg = str(err.value)
    assert str(root / "metadata.parquet") in msg and "--data" in msg
    assert "80/10/10" not in msg


def test_an_empty_split_is_refused(root: Path) -> None:
    _lists(root)
    (root / "splits" / "val.csv").write_text("\n")
    spec = replace(
        mapinwild_spec(root),
        split=SplitSpec(lists=tuple((s, f"splits/{s}.csv") for s in ("train", "val", "test"))),
    )
    with pytest.raises(DataError, match="split 'val' is empty"):
        sample_ids(spec)


def test_split_keys_round_trip_through_yaml(root: Path, tmp_path: Path) -> None:
    split = replace(_lists(root, "_x"), list_pattern=r"(?P<id>\d+)_x")
    spec = replace(mapinwild_spec(root), split=split)
    path = tmp_path / "spec.yaml"
    path.write_text(spec_to_yaml(spec))
    again = load_spec(path)
    assert again.split == split
    assert sample_ids(again)["val"] == VAL
    table = SplitSpec(table="m.parquet", table_id="patch_id", table_split="set")
    assert parse_split(table.to_dict(), None) == table


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"lists": {"train": "a.csv"}}, "split.lists must map train, val and test"),
        ({"list_pattern": "(unclosed"}, "split.list_pattern is not a regular expression"),
        ({"list_pattern": ".+_S1"}, "split.list_pattern has no (?P<id>...) group"),
    ],
)
def test_bad_split_keys_are_one_line_naming_the_key(entry: dict, message: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_split(entry, "spec.yaml")
    assert message in str(err.value) and "spec.yaml" in str(err.value)
    assert "\n" not in str(err.value)
