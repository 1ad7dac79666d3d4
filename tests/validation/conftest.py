"""Shared material for the validation tests: a tiny synthetic dataset and one 9-run ablation.

The dataset has 10 synthetic 32x32 scenes split 5 / 1 / 4 (four test samples, so that the
bootstrap over test samples has something to resample); runs are width-4 depth-2 U-Nets trained
for one epoch. The 4-modality ablation is trained once per session and only read by the tests
that share it (tests that change an ablation copy it or make their own). Everything here runs
on one torch thread (restored afterwards): these models are far too small to gain from more,
and on a busy machine a stalled second thread slows every step.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from modalens.data import synthetic
from modalens.validation import AblationResult, ablate


@contextmanager
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Every validation test on one torch thread."""
    with _one_thread():
        yield


def _split(root: Path, n_train: int, n_val: int, n_test: int) -> None:
    ids = [float(100000 + i) for i in range(n_train + n_val + n_test)]
    parts = [ids[:n_train], ids[n_train : n_train + n_val], ids[n_train + n_val :]]
    longest = max(len(p) for p in parts)
    frame = pd.DataFrame(
        {
            name: part + [np.nan] * (longest - len(part))
            for name, part in zip(("train", "validation", "test"), parts, strict=True)
        }
    )
    frame.to_csv(root / "split_IDs.csv", index=False)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 synthetic 32x32 scenes, split 5 train / 1 validation / 4 test."""
    root = synthetic.generate_synthetic(
        tmp_path_factory.mktemp("validation") / "data", samples=10, size=32, seed=0, progress=False
    )
    _split(root, 5, 1, 4)
    return root


@pytest.fixture(scope="session")
def base_config(tiny_data: Path) -> dict[str, Any]:
    """A run config for the tiny dataset: width 4, depth 2, one epoch."""
    return {
        "name": "tiny",
        "data": {"preset": "mapinwild", "root": str(tiny_data)},
        "model": {"base_width": 4, "depth": 2},
        "train": {"epochs": 1, "batch_size": 2, "lr": 1e-3, "crop_size": 32, "patience": 5},
    }


@pytest.fixture
def make_config(base_config: dict[str, Any]) -> Callable[..., dict[str, Any]]:
    """``make_config(use=None, **train) -> config``: the base config with changes."""

    def make(use: list[str] | None = None, **train: Any) -> dict[str, Any]:
        cfg = copy.deepcopy(base_config)
        if use is not None:
            cfg["use"] = use
        cfg["train"].update(train)
        return cfg

    return make


@pytest.fixture(scope="session")
def ablation(
    tmp_path_factory: pytest.TempPathFactory, base_config: dict[str, Any]
) -> AblationResult:
    """The 4-modality ablation (9 runs, seed 0) of the tiny dataset; read it, do not change it."""
    out = tmp_path_factory.mktemp("ablation") / "abl"
    with _one_thread():
        return ablate(base_config, out, seeds=(0,), progress=False)
