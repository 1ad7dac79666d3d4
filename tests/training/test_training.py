"""Training: masked losses/metrics, overfitting, fit, resume, checkpoints, tasks."""

from __future__ import annotations

import copy
import logging
import os
import random
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import tiny_config

from modalens.data import presets, synthetic
from modalens.errors import ModelError, SpecError
from modalens.tasks.losses import masked_regression_loss
from modalens.training import TaskModule, evaluate, fit, load_config, load_run
from modalens.training.callbacks import LIGHTNING_LOGGERS
from modalens.training.run import load_checkpoint


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic.generate_synthetic(
        tmp_path_factory.mktemp("synth") / "data", samples=6, size=64, seed=0, progress=False
    )


@pytest.fixture(scope="module")
def trained_run(synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "run"
    return fit(tiny_config(synth_root), out=out, progress=False)


# ------------------------------------------------------------------------------ masking
def _batch(task: str = "regression", b: int = 2, c: int = 4, s: int = 16) -> dict:
    g = torch.Generator().manual_seed(0)
    valid = torch.rand(b, s, s, generator=g) > 0.3
    if task == "regression":
        target = torch.rand(b, 1, s, s, generator=g)
    else:
        target = torch.randint(0, 3, (b, s, s), generator=g)
        target[~valid] = -1
    return {"image": torch.randn(b, c, s, s, generator=g), "target": target, "valid": valid}


@pytest.mark.parametrize("task", ["regression", "segmentation"])
def test_invalid_pixels_change_neither_loss_nor_metrics(task: str) -> None:
    torch.manual_seed(0)
    out = 1 if task == "regression" else 3
    module = TaskModule(task, in_channels=4, out_channels=out, base_width=8, depth=2).eval()
    batch = _batch(task)
    bad = copy.deepcopy(batch)
    inv = ~bad["valid"]
    bad["image"] = torch.where(inv[:, None], torch.tensor(1e6), bad["image"])
    if task == "regression":
        bad["target"][:, 0][inv] = float("nan")
    else:
        bad["target"][inv] = 2
    with torch.no_grad():
        r1, r2 = module.compute(batch), module.compute(bad)
    assert torch.equal(r1["loss"], r2["loss"]) and torch.isfinite(r1["loss"])
    assert torch.equal(r1["preds"], r2["preds"]) and torch.equal(r1["targets"], r2["targets"])
    m1 = module.val_metrics.clone()
    m2 = module.val_metrics.clone()
    m1.update(r1["preds"], r1["targets"])
    m2.update(r2["preds"], r2["targets"])
    assert {k: float(v) for k, v in m1.compute().items()} == {
        k: float(v) for k, v in m2.compute().items()
    }


def test_batch_without_valid_pixels_gives_zero_loss_and_gradient() -> None:
    module = TaskModule("regression", in_channels=4, out_channels=1, base_width=8, depth=2)
    batch = _batch()
    batch["valid"][:] = False
    batch["target"][:] = float("nan")
    res = module.compute(batch)
    assert float(res["loss"].detach()) == 0.0 and int(res["n"]) == 0
    res["loss"].backward()
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    assert all(torch.isfinite(g).all() and (g == 0).all() for g in grads)
    # direct helper: NaN targets at invalid pixels do not leak
    pred = torch.zeros(1, 1, 2, 2, requires_grad=True)
    loss, n = masked_regression_loss(
        pred,
        torch.tensor([[[[1.0, float("nan")], [1.0, 1.0]]]]),
        torch.tensor([[[1, 0], [1, 1]]]).bool(),
    )
    loss.backward()
    assert float(loss.detach()) == 1.0 and int(n) == 3 and torch.isfinite(pred.grad).all()


def test_tiny_batch_overfits() -> None:
    torch.manual_seed(0)
    module = TaskModule("regression", in_channels=4, out_channels=1, base_width=8, depth=2)
    batch = _batch(b=2, s=16)
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    losses = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: OpenMP overhead dominates on a busy machine
    try:
        for _ in range(40):
            opt.zero_grad()
            loss = module.compute(batch)["loss"]
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    finally:
        torch.set_num_threads(threads)
    assert losses[-1] <= 0.1 * losses[0]


def test_optimiser_and_scheduler_come_from_the_run_config_models() -> None:
    from modalens.training.config import SchedulerConfig, TrainConfig

    train = TrainConfig(optimizer="SGD", lr=0.02, weight_decay=0.1, scheduler={"T_0": 5})
    module = TaskModule(
        "regression", in_channels=4, out_channels=1, base_width=8, depth=2,
        optimizer=train.optimizer, lr=train.lr, weight_decay=train.weight_decay,
        scheduler=train.scheduler,
    )  # fmt: skip
    assert module.optimizer_config == train.optimizer_config()
    assert module.hparams.scheduler == train.scheduler.model_dump()  # plain in checkpoints
    got = module.configure_optimizers()
    opt, sched = got["optimizer"], got["lr_scheduler"]["scheduler"]
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["momentum"] == 0.9
    assert opt.defaults["lr"] == 0.02 and opt.defaults["weight_decay"] == 0.1
    assert isinstance(sched, torch.optim.lr_scheduler.CosineAnnealingWarmRestarts)
    assert (sched.T_0, sched.T_mult, sched.eta_min) == (5, 1, 0.0)
    # a checkpoint's partial scheduler dict takes the run config's defaults, None: no scheduler
    partial = TaskModule("regression", 4, 1, 8, 2, scheduler={"name": "cosine_warm_restarts"})
    assert partial.scheduler_config == SchedulerConfig()
    plain_module = TaskModule("regression", 4, 1, 8, 2)
    assert isinstance(plain_module.configure_optimizers(), torch.optim.Adam)
    for kw, where in [({"optimizer": "lion"}, "optimizer="), ({"scheduler": {"T_0": 0}}, "T_0")]:
        with pytest.raises(SpecError) as err:
            TaskModule("regression", 4, 1, 8, 2, **kw)
        assert where in str(err.value) and "\n" not in str(err.value)


# ------------------------------------------------------------------------------ runs
def test_fit_writes_run_folder(trained_run: Path) -> None:
    for name in ("config.yaml", "dataset.yaml", "stats.json", "metrics.csv"):
        assert (trained_run / name).is_file(), name
    assert (trained_run / "checkpoints" / "best.ckpt").is_file()
    assert (trained_run / "checkpoints" / "last.ckpt").is_file()
    table = pd.read_csv(trained_run / "metrics.csv")
    assert list(table["epoch"]) == [0, 1]
    for col in ("train_loss", "val_loss", "val_mae", "val_rmse", "lr"):
        assert table[col].notna().all(), col
    run = load_run(trained_run)
    assert not run.model.training and run.task.name == "regression"
    assert run.spec.modality("s1").normalization.mean is not None
    assert len(run.dataset("test")) == 1


def test_fit_leaves_the_process_as_it_found_it(synth_root: Path, tmp_path: Path) -> None:
    """Lightning seeds the random generators, turns on deterministic algorithms and sets
    PL_GLOBAL_SEED, PL_SEED_WORKERS and CUBLAS_WORKSPACE_CONFIG; modalens filters Lightning's
    warnings and sets its log levels: all are as before once fit returns."""

    def state() -> tuple:
        levels = [logging.getLogger(n).level for n in LIGHTNING_LOGGERS]
        return (
            dict(os.environ),
            torch.get_num_threads(),
            torch.are_deterministic_algorithms_enabled(),
            list(warnings.filters),
            levels,
        )

    def draws() -> tuple:
        return random.random(), float(np.random.rand()), torch.rand(3).tolist()

    random.seed(7), np.random.seed(7), torch.manual_seed(7)
    want = draws()
    random.seed(7), np.random.seed(7), torch.manual_seed(7)
    before = state()
    fit(tiny_config(synth_root, epochs=1), out=tmp_path / "run", progress=False)
    assert state() == before
    assert draws() == want  # the caller's random streams go on where they were


def test_existing_run_folder_needs_resume(trained_run: Path, synth_root: Path) -> None:
    with pytest.raises(ModelError, match="--resume"):
        fit(tiny_config(synth_root), out=trained_run, progress=False)


def test_test_writes_metrics_table(trained_run: Path) -> None:
    table = evaluate(trained_run, split="test")
    assert (trained_run / "metrics_test.csv").is_file()
    assert table.iloc[0]["id"] == "all"
    assert {"loss", "mae", "rmse", "n"} <= set(table.columns)
    # the pooled and per-sample errors, recomputed with numpy from the model's output on the
    # same evaluation crops (inputs zeroed where invalid, as in training)
    run = load_run(trained_run)
    errors = {}
    for item in run.dataset("test"):
        valid = item["valid"].numpy().astype(bool)
        x = torch.where(item["valid"].bool()[None], item["image"], 0.0)[None]
        with torch.inference_mode():
            pred = run.model.eval()(x)[0, 0].numpy().astype(np.float64)
        errors[str(item["id"])] = (pred - item["target"][0].numpy())[valid]
    per = table[table["id"] != "all"].set_index("id")
    assert sorted(per.index) == sorted(errors)
    for sid, e in errors.items():
        assert per.loc[sid, "n"] == e.size
        assert per.loc[sid, "mae"] == pytest.approx(np.abs(e).mean(), rel=1e-4)
    pooled = np.concatenate(list(errors.values()))
    assert table.iloc[0]["n"] == pooled.size
    assert table.iloc[0]["mae"] == pytest.approx(np.abs(pooled).mean(), rel=1e-4)
    assert table.iloc[0]["rmse"] == pytest.approx(np.sqrt(np.mean(pooled**2)), rel=1e-4)


def test_resume_equals_uninterrupted_run(synth_root: Path, tmp_path: Path) -> None:
    aug = {"hflip": 0.5, "vflip": 0.5, "blur": 0.5}
    full = tiny_config(synth_root, epochs=2, augment=aug, weighted_sampling=True)
    half = tiny_config(synth_root, epochs=1, augment=aug, weighted_sampling=True)
    fit(full, out=tmp_path / "a", progress=False)
    fit(half, out=tmp_path / "b", progress=False)
    fit(full, out=tmp_path / "b", progress=False, resume=True)
    a = torch.load(tmp_path / "a/checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    b = torch.load(tmp_path / "b/checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    assert a["epoch"] == b["epoch"] == 1
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    ma = pd.read_csv(tmp_path / "a/metrics.csv").drop(columns="seconds")
    mb = pd.read_csv(tmp_path / "b/metrics.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(ma, mb)


def test_resume_rejects_changed_config(trained_run: Path, synth_root: Path) -> None:
    with pytest.raises(SpecError, match="train.lr"):
        fit(tiny_config(synth_root, lr=0.5), out=trained_run, progress=False, resume=True)


def test_checkpoint_modality_mismatch(trained_run: Path) -> None:
    run = load_run(trained_run)
    with pytest.raises(ModelError) as info:
        load_checkpoint(run.checkpoint, spec=run.spec.select(use=["s2", "s1"]))
    assert "checkpoint expects modalities s2,s1,esa_wc,viirs but data has s2,s1" in str(info.value)
    reordered = run.spec.__class__(
        **{**run.spec.__dict__, "modalities": tuple(reversed(run.spec.modalities))}
    )
    with pytest.raises(ModelError, match="but data has viirs,esa_wc,s1,s2"):
        load_checkpoint(run.checkpoint, spec=reordered)


# ------------------------------------------------------------------------------ tasks
def test_segmentation_trains(make_mapinwild, tmp_path: Path) -> None:
    root = make_mapinwild(n=6, size=32, splits=(4, 1, 1))
    cfg = tiny_config(root, epochs=1, crop_size=32)
    cfg["data"]["preset_options"] = {"target": "mask"}
    run_dir = fit(cfg, out=tmp_path / "seg", progress=False)
    row = pd.read_csv(run_dir / "metrics.csv").iloc[-1]
    assert load_config(cfg).task == "segmentation"
    # mask: the four protected-area classes 0-3, named by their codes
    for col in ("train_loss", "val_loss", "val_iou_macro", "val_f1_macro", "val_iou_3"):
        assert pd.notna(row[col]), col


def test_classification_trains_on_real_bigearthnet(bigearthnet_root: Path, tmp_path: Path) -> None:
    spec = presets.bigearthnet_spec(bigearthnet_root)
    cfg = {
        "data": {"preset": "bigearthnet", "root": str(bigearthnet_root)},
        "model": {"base_width": 8, "depth": 3},
        "train": {"epochs": 1, "batch_size": 2, "lr": 1e-3, "crop_size": 0},
    }
    assert load_config(cfg).task == "classification"
    run_dir = fit(cfg, out=tmp_path / "ben", progress=False)
    row = pd.read_csv(run_dir / "metrics.csv").iloc[-1]
    for col in ("train_loss", "val_loss", "val_map", "val_f1"):
        assert pd.notna(row[col]), col
    run = load_run(run_dir)
    assert run.model.out_channels == len(spec.target.classes) == 43
    assert run.model.in_channels == 14  # 12 S2 + 2 S1


def test_repeated_weighted_draws_get_their_own_crops(mapinwild_root):
    """With replacement, a scene drawn twice in an epoch must not repeat the same window."""
    from modalens.data import MultimodalDataset, presets
    from modalens.data.sampling import EpochDataset, EpochSampler

    spec = presets.mapinwild_spec(mapinwild_root, stats="published")
    n = len(MultimodalDataset(spec, "train", crop_size=16))
    weights = torch.zeros(n)
    weights[0] = 1.0  # every draw picks item 0
    sampler = EpochSampler(n, seed=0, weights=weights, num_samples=4)
    keys = list(sampler)
    assert keys == [(0, d, 0) for d in range(4)]
    ds = EpochDataset(MultimodalDataset(spec, "train", crop_size=16, seed=0))
    windows = [ds[k]["window"] for k in keys]
    assert len(set(windows)) > 1
    # and the same keys give the same windows again (resume-safe)
    assert windows == [ds[k]["window"] for k in keys]
