"""Sharded attribution: 2 CPU processes (gloo, one thread each) write what one process writes.

The 2-process runs go through the CLI in a subprocess (Lightning's launcher re-runs the
command for rank 1); the 1-process references run in this process with one torch thread.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import rasterio
import torch

from modalens.attribution import attribute_run
from modalens.attribution.api import attribute
from modalens.attribution.batches import LazyBatch
from modalens.attribution.maps import map_files, occlusion_maps
from modalens.attribution.sharding import Shard, check_launch
from modalens.cli import main
from modalens.errors import SpecError
from modalens.threads import DEFAULT_MARK, threads_per_process

SRC = Path(__file__).resolve().parents[2] / "src"
#: a constant fill and a random one (seeded per sample, never per rank)
STRATEGIES = "zeros,gaussian"
ARGS = ["--split", "train", "--batch-size", "1", "--strategy", STRATEGIES]


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``modalens -q ARGS`` in a fresh process with one thread per rank."""
    env = {k: v for k, v in os.environ.items() if k != DEFAULT_MARK}
    env.update(PYTHONPATH=str(SRC), OMP_NUM_THREADS="1")
    for k in ("WORLD_SIZE", "LOCAL_RANK", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "modalens.cli", "-q", *args]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def parts(folder: Path) -> dict[str, int]:
    """Part file name -> modification time (ns)."""
    return {p.name: p.stat().st_mtime_ns for p in sorted((folder / "parts").glob("part-*"))}


def one_process_run(run: Path, out: Path, **kwargs: Any) -> None:
    """The attribution :data:`ARGS` describe, in this process (``kwargs`` to attribute_run)."""
    attribute_run(
        run,
        "train",
        out=out,
        batch_size=1,
        strategies=STRATEGIES.split(","),
        progress=False,
        **kwargs,
    )


@pytest.fixture(scope="module")
def one_process(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 1-process attribution of the tiny run's train split (one batch per sample)."""
    out = tmp_path_factory.mktemp("one") / "attr"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one_process_run(tiny_run, out)
    finally:
        torch.set_num_threads(before)
    assert len(parts(out)) >= 3  # enough batches for both ranks and a resume
    return out


@pytest.fixture(scope="module")
def two_processes(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same attribution by 2 processes; stdout saved in ``stdout.txt`` beside it."""
    out = tmp_path_factory.mktemp("two") / "attr"
    res = cli("attribute", str(tiny_run), *ARGS, "--out", str(out), "--devices", "2")
    (out.parent / "stdout.txt").write_text(res.stdout)
    return out


def test_two_processes_write_what_one_writes(one_process: Path, two_processes: Path) -> None:
    a = pd.read_parquet(one_process / "scores.parquet")
    b = pd.read_parquet(two_processes / "scores.parquet")
    assert len(a) and a["strategy"].nunique() == 2
    pd.testing.assert_frame_equal(a, b)  # same rows, same order, same values
    assert parts(one_process).keys() == parts(two_processes).keys()
    for name in ("summary.csv", "summary.txt", "source.json", "parts/config.json"):
        assert (one_process / name).read_text() == (two_processes / name).read_text(), name
    assert (two_processes / "influence.png").is_file()
    # rank 0 alone prints the table: each block once
    stdout = (two_processes.parent / "stdout.txt").read_text()
    assert stdout.count("strategy=gaussian") == 1
    assert stdout.strip() == (one_process / "summary.txt").read_text().strip()


def test_sharded_resume_computes_only_missing_batches(
    one_process: Path, two_processes: Path, tiny_run: Path, tmp_path: Path
) -> None:
    # an interrupted 1-process run finished by 2 processes
    out = tmp_path / "resumed"
    shutil.copytree(one_process, out)
    before = parts(out)
    missing = sorted(before)[1::2]
    for name in missing:
        (out / "parts" / name).unlink()
    (out / "scores.parquet").unlink()
    cli("attribute", str(tiny_run), *ARGS, "--out", str(out), "--devices", "2")
    after = parts(out)
    assert after.keys() == before.keys()  # no duplicate parts
    rewritten = sorted(n for n in after if after[n] != before[n])
    assert rewritten == missing
    expected = pd.read_parquet(one_process / "scores.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(out / "scores.parquet"), expected)

    # an interrupted 2-process run finished by one process
    out = tmp_path / "resumed-1"
    shutil.copytree(two_processes, out)
    gone = sorted(parts(out))[:2]
    for name in gone:
        (out / "parts" / name).unlink()
    scored: list[int] = []
    one_process_run(tiny_run, out, on_batch=lambda i, _rows: scored.append(i))
    assert [f"part-{i:06d}.parquet" for i in scored] == gone
    pd.testing.assert_frame_equal(pd.read_parquet(out / "scores.parquet"), expected)


def test_sharded_maps_equal_one_process(
    tiny_run: Path, tmp_path: Path, one_torch_thread: None
) -> None:
    ids = ["100000", "100001"]
    one = occlusion_maps(
        tiny_run, ids, tmp_path / "one", tile=64, overlap=0, strategies=["gaussian"], preview=False
    )
    res = cli(
        "maps", str(tiny_run), "--ids", ",".join(ids), "--strategy", "gaussian",
        "--out", str(tmp_path / "two"), "--tile", "64", "--overlap", "0", "--devices", "2",
    )  # fmt: skip
    two = [Path(p) for p in res.stdout.split()]
    names = ["s2", "s1", "esa_wc", "viirs"]  # the modalities in spec order
    expected = [p for sid in ids for p in map_files(tmp_path / "two", sid, ["gaussian"], names)]
    assert sorted(two) == sorted(expected) and two[0] == expected[0]  # printed once
    assert [p.name for p in two] == [p.name for p in expected]  # in scene order
    assert all(p.is_file() for p in two)
    for p in one:
        with rasterio.open(p) as a, rasterio.open(tmp_path / "two" / p.name) as b:
            assert np.array_equal(a.read(), b.read(), equal_nan=True), p.name
            assert a.tags() == b.tags()


def test_a_scene_map_does_not_depend_on_the_scenes_before_it(
    tiny_run: Path, tmp_path: Path, one_torch_thread: None
) -> None:
    opts = {"tile": 64, "overlap": 0, "strategies": ["gaussian"], "preview": False}
    occlusion_maps(tiny_run, ["100000", "100001"], tmp_path / "both", **opts)
    occlusion_maps(tiny_run, ["100001"], tmp_path / "alone", **opts)
    name = "100001_occlusion_gaussian.tif"
    with (
        rasterio.open(tmp_path / "both" / name) as a,
        rasterio.open(tmp_path / "alone" / name) as b,
    ):
        assert np.array_equal(a.read(), b.read(), equal_nan=True)


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--devices", "0", "devices must be a whole number of at least 1, got 0"),
        ("--num-nodes", "-1", "nodes must be a whole number of at least 1, got -1"),
        ("--accelerator", "tpu9", "unknown accelerator 'tpu9'"),
    ],
)
def test_bad_process_counts_are_one_line_errors(
    tiny_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    flag: str,
    value: str,
    message: str,
) -> None:
    code = main(["-q", "attribute", str(tiny_run), "--out", str(tmp_path / "a"), flag, value])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "a").exists()  # refused before any work
    code = main(["-q", "maps", str(tiny_run), "--out", str(tmp_path / "m"), flag, value])
    assert code == 2 and message in capsys.readouterr().err


def test_torchrun_with_one_device_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in {
        "RANK": "1",
        "GROUP_RANK": "0",
        "LOCAL_WORLD_SIZE": "2",
        "WORLD_SIZE": "2",
    }.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SpecError, match="started by torchrun as 2 processes"):
        check_launch(1)
    check_launch(2)  # matching counts are Fabric's to check


def test_shard_shares_batches_round_robin_over_the_work_left(tmp_path: Path) -> None:
    assert Shard(1, 3).pick(list(range(8))) == [1, 4, 7]
    assert Shard().pick([5, 6]) == [5, 6] and not Shard().sharded
    model = torch.nn.Conv2d(2, 1, 1)
    x = torch.rand(1, 2, 4, 4, generator=torch.Generator().manual_seed(0))

    def run(rank: int) -> list[int]:
        batches = [
            LazyBatch([str(i)], lambda i=i: {"image": x + i, "id": [str(i)]}) for i in range(5)
        ]
        seen: list[int] = []
        attribute(
            model,
            batches,
            {"a": [0], "b": [1]},
            strategies=["zeros"],
            levels=["output"],
            out=tmp_path,
            on_batch=lambda i, _r: seen.append(i),
            shard=Shard(rank, 2, sync=lambda: None),
        )
        return seen

    (tmp_path / "parts").mkdir()
    assert run(1) == [1, 3]  # rank 1 of 2: every other batch, named by its global index
    assert sorted(p.name for p in (tmp_path / "parts").glob("part-*")) == [
        "part-000001.parquet",
        "part-000003.parquet",
    ]
    assert not (tmp_path / "scores.parquet").exists()  # rank 0 merges
    # resumed: the batches left (0, 2, 4) are shared anew, rank 0 takes 0 and 4 and merges
    assert run(0) == [0, 4]
    merged = pd.read_parquet(tmp_path / "scores.parquet")
    assert merged["sample_id"].unique().tolist() == ["0", "1", "3", "4"]


def test_threads_per_process_divides_the_default_and_keeps_a_user_value() -> None:
    env = {"OMP_NUM_THREADS": "1"}  # set by the user
    assert threads_per_process(2, env) == 1
    env = {"OMP_NUM_THREADS": "8"}
    assert threads_per_process(2, env) == 8
    env = {}
    n = threads_per_process(2, env)
    assert env["OMP_NUM_THREADS"] == env[DEFAULT_MARK] == str(n) and n >= 1
    assert threads_per_process(2, env) == n  # a launched child computes the same


def test_a_shard_needs_an_output_folder() -> None:
    with pytest.raises(SpecError, match="needs an output folder"):
        attribute(
            torch.nn.Conv2d(2, 1, 1), [torch.zeros(1, 2, 4, 4)], {"a": [0]}, shard=Shard(0, 2)
        )


def test_sharded_auto_precision_counts_are_summed_over_the_ranks(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--precision auto`` with bf16 forced on: the counts in source.json of a 2-process run
    are those of the whole split (what one process counts), not rank 0's. Which occlusions run
    in bf16 differs (each rank's own ``Pace`` decides when bf16 stops paying), their total
    does not."""
    monkeypatch.setenv("MODALENS_NATIVE_BF16", "1")
    args = ["attribute", str(tiny_run), *ARGS, "--precision", "auto"]
    cli(*args, "--out", str(tmp_path / "one"))
    cli(*args, "--out", str(tmp_path / "two"), "--devices", "2")
    one = json.loads((tmp_path / "one" / "source.json").read_text())["precision"]
    two = json.loads((tmp_path / "two" / "source.json").read_text())["precision"]
    assert one["used"] == "bf16+fp32" and one["occlusions"] > 0
    n_parts = len(parts(tmp_path / "two"))
    assert n_parts >= 3  # both ranks scored batches, so rank 0 alone would count fewer
    assert two["occlusions"] == one["occlusions"] and two["used"] == one["used"]
    assert two["bf16"] + two["fp32"] >= two["occlusions"]  # each evaluated once or redone
    assert two["fp32_share"] == pytest.approx(two["fp32"] / two["occlusions"])
