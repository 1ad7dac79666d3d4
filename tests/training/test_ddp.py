"""Training on 2 processes (Lightning DDP, gloo on CPU), each run as the CLI in a subprocess.

Measured on this data (width 4, global batch 4, 2 epochs, seeds 0-2): 2 processes against
1 process differ by 0.07-0.58 % in val_loss and by 0.2-3.1 % in train_loss. The difference is
BatchNorm: each process normalises with the statistics of its half of the batch (train-mode
outputs and running statistics change). With BatchNorm removed the two agree to 1e-7
(float reduction order). The tolerances below are about 3x the largest difference measured.
"""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from helpers import tiny_config, write_mapinwild

from modalens import threads
from modalens.cli import main
from modalens.errors import ModelError, SpecError
from modalens.training import fit
from modalens.training.ranks import RANK_VARIABLES, is_global_zero, wait_for_files
from modalens.training.runstate import RunState, read_state

SRC = Path(__file__).resolve().parents[2] / "src"
#: relative tolerance of 2 processes against 1 (see the module docstring)
VAL_TOLERANCE = 0.02
TRAIN_TOLERANCE = 0.10


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in RANK_VARIABLES}
    for k in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "SLURM_NTASKS"):
        env.pop(k, None)
    return {**env, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}


def _cli(*args: str, prefix: tuple[str, ...] = ("-m", "modalens.cli")) -> None:
    res = subprocess.run(
        [sys.executable, *prefix, *args], env=_env(), capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr[-3000:]


def _fit2(config: Path, out: Path, *extra: str) -> None:
    _cli(
        "-q",
        "fit",
        "--config",
        str(config),
        "--out",
        str(out),
        "--devices",
        "2",
        "--strategy",
        "ddp",
        *extra,
    )


def _metrics(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "metrics.csv").drop(columns="seconds")


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints/last.ckpt", map_location="cpu", weights_only=False)[
        "state_dict"
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run A: 2 processes x 3 epochs; run B: 2 processes x 2 epochs (metrics and weights kept),
    then resumed to 3 epochs; run C: 1 process x 2 epochs, same global batch."""
    base = tmp_path_factory.mktemp("ddp")
    root = write_mapinwild(base / "data")
    aug = {"hflip": 0.5, "vflip": 0.5, "blur": 0.5}
    configs = {}
    for epochs in (2, 3):
        cfg = tiny_config(root, epochs=epochs, batch_size=4, augment=aug, weighted_sampling=True)
        cfg["model"]["base_width"] = 4
        configs[epochs] = base / f"cfg{epochs}.yaml"
        configs[epochs].write_text(yaml.safe_dump(cfg))
    _fit2(configs[3], base / "a")
    _fit2(configs[2], base / "b")
    b2 = {"metrics": _metrics(base / "b"), "weights": _weights(base / "b")}
    _fit2(configs[3], base / "b", "--resume")
    fit(configs[2], out=base / "c", progress=False)
    return {
        "base": base,
        "configs": configs,
        "a": base / "a",
        "b": base / "b",
        "b2": b2,
        "c": base / "c",
    }


def test_two_processes_match_one_within_the_stated_tolerance(runs: dict) -> None:
    one, two = _metrics(runs["c"]), _metrics(runs["a"]).iloc[:2]
    assert list(one["step"]) == list(two["step"]) == [2, 4]  # same global batches: same steps
    for col in ("val_loss", "val_mae", "val_rmse"):
        rel = ((two[col] - one[col]).abs() / one[col].abs()).max()
        assert rel < VAL_TOLERANCE, (col, rel)
    rel = ((two["train_loss"] - one["train_loss"]).abs() / one["train_loss"]).max()
    assert rel < TRAIN_TOLERANCE, rel
    assert not one.equals(two)  # truly two runs (BatchNorm sees half batches)


def test_a_second_two_process_run_repeats_the_first_bit_for_bit(runs: dict) -> None:
    # run B's first two epochs are run A's first two, value for value
    pd.testing.assert_frame_equal(runs["b2"]["metrics"], _metrics(runs["a"]).iloc[:2])
    files = sorted(p.name for p in runs["b"].rglob("*") if p.is_file())
    assert files == [
        "best.ckpt",
        "config.yaml",
        "dataset.yaml",
        "last.ckpt",
        "masking.csv",
        "metrics.csv",
        "provenance.json",
        "state.json",
        "stats.json",
    ]  # once each
    assert read_state(runs["b"]) == RunState("finished", 3, 3)  # resumed by two processes


def test_two_process_resume_equals_the_uninterrupted_run(runs: dict) -> None:
    pd.testing.assert_frame_equal(_metrics(runs["b"]), _metrics(runs["a"]))
    a, b = _weights(runs["a"]), _weights(runs["b"])
    assert a.keys() == b.keys()
    for k, v in a.items():
        assert torch.equal(v, b[k]), k


def test_torchrun_two_simulated_nodes_train_like_the_lightning_launcher(runs: dict) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    out, logs = runs["base"] / "torchrun", runs["base"] / "torchrun-logs"
    logs.mkdir()
    procs = []
    for node in (0, 1):  # one torchrun per simulated node; logs in files (pipes could block)
        with open(logs / f"node{node}.log", "w") as log:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "torch.distributed.run",
                        "--nnodes",
                        "2",
                        "--nproc-per-node",
                        "1",
                        "--node-rank",
                        str(node),
                        "--master-addr",
                        "127.0.0.1",
                        "--master-port",
                        port,
                        "-m",
                        "modalens.cli",
                        "-q",
                        "fit",
                        "--config",
                        str(runs["configs"][2]),
                        "--out",
                        str(out),
                        "--num-nodes",
                        "2",
                        "--devices",
                        "1",
                    ],
                    env=_env(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        codes = [p.wait(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    tail = "".join((logs / f"node{n}.log").read_text()[-1500:] for n in (0, 1))
    assert codes == [0, 0], tail
    pd.testing.assert_frame_equal(_metrics(out), runs["b2"]["metrics"])


# ------------------------------------------------------------------------------ single process
def test_a_global_batch_the_processes_cannot_share_is_one_line(tmp_path: Path, capsys) -> None:
    root = write_mapinwild(tmp_path / "data", n=4, splits=(2, 1, 1))
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(tiny_config(root, batch_size=4)))
    rc = main(["fit", "--config", str(config), "--out", str(tmp_path / "r"), "--devices", "3"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert "train.batch_size 4 (the global batch) is not divisible by the 3" in err
    with pytest.raises(SpecError, match="sync_batchnorm needs GPUs"):
        fit(
            config,
            out=tmp_path / "r",
            overrides={"train": {"sync_batchnorm": True, "accelerator": "cpu"}},
        )
    assert not (tmp_path / "r").exists()


class Stop(Exception):
    """Raised by a patched step of fit once the state to check is recorded."""


@pytest.mark.parametrize(("user", "expected"), [(None, 4), ("3", 3)])
def test_cpu_processes_share_the_cores_while_fit_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, user: str | None, expected: int
) -> None:
    """``fit`` with 2 CPU processes on an 8-core machine gives each 4 threads (inherited by the
    ranks Lightning starts through OMP_NUM_THREADS), a user's OMP_NUM_THREADS is kept, and
    both come back when fit returns (here: raises)."""
    monkeypatch.setattr(threads, "available_cpus", lambda *a: 8)
    monkeypatch.delenv(threads.DEFAULT_MARK, raising=False)
    if user is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", user)
    seen: list[tuple[int, str | None]] = []

    def record(spec: object) -> None:  # fit's first step after choosing the threads
        seen.append((torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")))
        raise Stop

    monkeypatch.setattr(importlib.import_module("modalens.training.fit"), "sample_ids", record)
    root = write_mapinwild(tmp_path / "data", n=4, splits=(2, 1, 1))
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(tiny_config(root, batch_size=4)))
    before = torch.get_num_threads()
    environ = dict(os.environ)
    try:
        with pytest.raises(Stop):
            fit(
                config,
                out=tmp_path / "r",
                overrides={"train": {"devices": 2, "accelerator": "cpu"}},
            )
        assert seen == [(expected, str(expected))]
        assert torch.get_num_threads() == before
        assert dict(os.environ) == environ
    finally:
        torch.set_num_threads(before)


def test_rank_from_the_launchers_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert is_global_zero()
    for name, value, zero in [
        ("LOCAL_RANK", "0", True),
        ("NODE_RANK", "1", False),
        ("SLURM_PROCID", "1", False),
        ("RANK", "3", False),
    ]:
        monkeypatch.setenv(name, value)
        assert is_global_zero() is zero, name
        monkeypatch.delenv(name)


def test_a_rank_waits_for_rank_zero_and_says_why_it_gave_up(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RANK", "1")
    (tmp_path / "config.yaml").write_text("x")
    wait_for_files([tmp_path / "config.yaml"], timeout=0.1)
    with pytest.raises(ModelError) as info:
        wait_for_files([tmp_path / "config.yaml", tmp_path / "stats.json"], timeout=0.3)
    assert "rank 1 waited 0.3 s for rank 0 to write stats.json" in str(info.value)
    assert "MODALENS_RANK_WAIT" in str(info.value) and "\n" not in str(info.value)
