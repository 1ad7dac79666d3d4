"""The Task API: losses against hand-computed values, masking, heads, metrics, outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from modalens.data import SourceFile, TargetSpec, bigearthnet_spec, mapinwild_spec
from modalens.errors import ModelError
from modalens.models import UNet
from modalens.tasks import (
    TASKS,
    ClassificationTask,
    RegressionTask,
    SegmentationTask,
    get_task,
    headline_metric,
    lower_is_better,
)
from modalens.tasks.headline import worse_by
from modalens.tasks.losses import masked_regression_loss, pooled_cross_entropy
from modalens.tasks.registry import task_for_target

NAN = float("nan")


def _regression_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two 2x2 samples: squared errors 1, 0, 4 (+ one invalid NaN pixel) and 4 (one valid)."""
    pred = torch.tensor([[[[0.0, 1.0], [3.0, 5.0]]], [[[2.0, 2.0], [2.0, 2.0]]]])
    target = torch.tensor([[[[1.0, 1.0], [1.0, NAN]]], [[[0.0, NAN], [NAN, 7.0]]]])
    valid = torch.tensor([[[1, 1], [1, 0]], [[1, 0], [0, 0]]]).bool()
    return pred, target, valid


# ------------------------------------------------------------------------------ registry
def test_task_follows_the_target_kind_with_outputs_head_and_activation() -> None:
    reg = task_for_target(mapinwild_spec("/x").target)
    seg = task_for_target(mapinwild_spec("/x", target="mask").target)
    cls = task_for_target(bigearthnet_spec("/x").target)
    assert (type(reg), type(seg), type(cls)) == (
        RegressionTask,
        SegmentationTask,
        ClassificationTask,
    )
    assert [t.name for t in (reg, seg, cls)] == list(TASKS)
    assert (reg.n_outputs, seg.n_outputs, cls.n_outputs) == (1, 2, 43)
    assert (reg.loss_name, seg.loss_name, cls.loss_name) == ("mse", "ce", "bce")
    assert (reg.head, seg.head, cls.head) == ("dense", "dense", "scene")
    assert reg.dense and seg.dense and not cls.dense
    act = reg.activation()
    assert isinstance(act, nn.LeakyReLU) and act.negative_slope == 0.01
    assert isinstance(seg.activation(), nn.Identity) and isinstance(cls.activation(), nn.Identity)
    single = TargetSpec(
        "scene_labels", SourceFile("{id}.json"), classes=("a", "b"), multilabel=False
    )
    assert task_for_target(single).loss_name == "ce" and not task_for_target(single).multilabel
    assert cls.multilabel


def test_build_model_gives_the_task_head() -> None:
    x = torch.randn(2, 5, 32, 32)
    with torch.no_grad():
        reg = get_task("regression").build_model(5, base_width=8, depth=2).eval()
        seg = get_task("segmentation", 3).build_model(5, base_width=8, depth=2).eval()
        cls = get_task("classification", 7).build_model(5, base_width=8, depth=2).eval()
        assert reg(x).shape == (2, 1, 32, 32) and isinstance(reg.activation, nn.LeakyReLU)
        assert seg(x).shape == (2, 3, 32, 32)
        assert cls(x).shape == (2, 7)
    # the paper's model keeps its parameter count and state_dict keys whatever the head's source
    paper = get_task("regression").build_model(14)
    plain = UNet(14, 1, 64, 4)
    assert sum(p.numel() for p in paper.parameters()) == 17_273_729
    assert list(paper.state_dict()) == list(plain.state_dict())


def test_unknown_task_or_loss_is_a_one_line_model_error() -> None:
    with pytest.raises(ModelError, match="unknown task 'depth'.*use regression, segmentation"):
        get_task("depth")
    with pytest.raises(ModelError) as info:
        get_task("segmentation", 3, "mse")
    msg = str(info.value)
    assert "loss 'mse' is not available for task 'segmentation'" in msg and "choose from ce" in msg
    assert "\n" not in msg


# ------------------------------------------------------------------------------ losses
def test_regression_losses_by_hand() -> None:
    pred, target, valid = _regression_batch()
    mse, mae = get_task("regression", 1, "mse"), get_task("regression", 1, "mae")
    # per sample: (1 + 0 + 4) / 3 and 4 / 1; absolute: (1 + 0 + 2) / 3 and 2 / 1
    assert torch.allclose(mse.loss(pred, target, valid), torch.tensor([5 / 3, 4.0]))
    assert torch.allclose(mae.loss(pred, target, valid), torch.tensor([1.0, 2.0]))
    # pooled over the batch's 4 valid pixels
    loss, n = mse.pooled_loss(pred, target, valid)
    assert int(n) == 4 and math.isclose(float(loss), 9 / 4, rel_tol=1e-6)
    loss, n = mae.pooled_loss(pred, target, valid)
    assert int(n) == 4 and math.isclose(float(loss), 5 / 4, rel_tol=1e-6)
    # without a mask every pixel counts (the NaN targets are zeroed as non-finite errors)
    no_nan = torch.nan_to_num(target, nan=0.0)
    assert torch.allclose(mse.loss(pred, no_nan), ((pred - no_nan) ** 2).flatten(1).mean(1))


def test_pooled_regression_loss_keeps_its_arithmetic() -> None:
    """The training loss is the masked sum of squared errors over the valid count, bit for bit
    (the formula training used before the Task API)."""
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(3, 2, 9, 7, generator=g)
    target = torch.randn(3, 2, 9, 7, generator=g)
    valid = torch.rand(3, 9, 7, generator=g) > 0.4
    mask = valid[:, None].expand_as(pred)
    zero = torch.zeros(())
    err = pred - torch.where(mask, target, zero)
    expected = torch.where(mask, err * err, zero).sum() / mask.sum().clamp_min(1)
    loss, n = RegressionTask(2, "mse").pooled_loss(pred, target, valid)
    assert torch.equal(loss, expected) and int(n) == int(mask.sum())
    assert torch.equal(masked_regression_loss(pred, target, valid)[0], expected)


def test_invalid_pixels_reach_neither_loss_nor_gradient() -> None:
    pred, target, valid = _regression_batch()
    pred = pred.clone().requires_grad_(True)
    task = get_task("regression")
    loss, _ = task.pooled_loss(pred, target, valid)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()
    # d/dpred of sum(err^2) / 4 is err / 2 at the valid pixels (errors -1, 0, 2 and 2), else 0
    assert (pred.grad[:, 0][~valid] == 0).all()
    assert pred.grad[:, 0][valid].tolist() == [-0.5, 0.0, 1.0, 1.0]
    other = torch.where(valid[:, None], target, torch.full_like(target, 1e6))
    assert torch.equal(task.loss(pred, target, valid), task.loss(pred, other, valid))
    # no valid pixel: zero loss, zero count
    loss, n = task.pooled_loss(pred, target, torch.zeros_like(valid))
    assert float(loss.detach()) == 0.0 and int(n) == 0


def test_segmentation_losses_by_hand() -> None:
    # logits (0, log 3): p(class 1) = 3/4; pixels with targets 1, 0, ignored (-1), invalid
    logits = torch.zeros(1, 2, 2, 2)
    logits[:, 1] = math.log(3)
    target = torch.tensor([[[1, 0], [-1, 1]]])
    valid = torch.tensor([[[1, 1], [1, 0]]]).bool()
    task = get_task("segmentation", 2)
    expected = (-math.log(3 / 4) - math.log(1 / 4)) / 2
    assert math.isclose(float(task.loss(logits, target, valid)[0]), expected, rel_tol=1e-6)
    loss, n = task.pooled_loss(logits, target, valid)
    assert int(n) == 2 and math.isclose(float(loss), expected, rel_tol=1e-6)
    assert torch.equal(loss, pooled_cross_entropy(logits, target, valid)[0])
    res = task.score(logits, target, valid)
    assert res["preds"].tolist() == [1, 1] and res["targets"].tolist() == [1, 0]


def test_classification_losses_by_hand() -> None:
    logits = torch.tensor([[0.0, 0.0, math.log(2)], [0.0, 0.0, 0.0]])
    target = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    valid = torch.tensor([[[True]], [[False]]])  # the second scene has no valid input pixel
    bce, ce = get_task("classification", 3, "bce"), get_task("classification", 3, "ce")
    # BCE with logits 0 is log 2 per label; logit log 2 for a positive label: log(3/2)
    first = (2 * math.log(2) + math.log(3 / 2)) / 3
    assert torch.allclose(bce.loss(logits, target), torch.tensor([first, math.log(2)]))
    # softmax (1/4, 1/4, 1/2): CE of label 2 is log 2; uniform over 3: log 3
    assert torch.allclose(ce.loss(logits, target), torch.tensor([math.log(2), math.log(3)]))
    loss, n = bce.pooled_loss(logits, target, valid)  # only the first scene counts
    assert int(n) == 1 and math.isclose(float(loss), first, rel_tol=1e-6)
    res = ce.score(logits, target, valid)
    assert res["targets"].tolist() == [2] and torch.allclose(res["preds"].sum(1), torch.ones(1))


# ------------------------------------------------------------------------------ metrics
def test_metrics_and_sample_metrics() -> None:
    reg = get_task("regression")
    coll = reg.metrics("val_")
    preds, targets = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 1.0])
    coll.update(preds, targets)
    values = {k: float(v) for k, v in coll.compute().items()}
    assert values == pytest.approx({"val_mae": 2 / 3, "val_rmse": math.sqrt(2 / 3)})
    assert reg.sample_metrics(preds, targets) == pytest.approx(
        {"mae": 2 / 3, "rmse": math.sqrt(2 / 3)}
    )
    assert reg.sample_metrics(preds[:0], targets[:0]) == {}
    seg = get_task("segmentation", 3)
    per_class = {f"{k}_{c}" for k in ("iou", "f1") for c in range(3)}
    assert set(seg.metric_dict()) == {"iou_macro", "f1_macro", "accuracy", *per_class}
    # per class (pred, true): 0 -> IoU 1/1, F1 1; 1 -> 1/2, 2/3; 2 -> 1/2, 2/3
    per_sample = seg.sample_metrics(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 1, 2]))
    assert per_sample == pytest.approx(
        {"accuracy": 0.75, "iou_macro": 2 / 3, "f1_macro": 7 / 9}
        | {"iou_0": 1.0, "iou_1": 0.5, "iou_2": 0.5, "f1_0": 1.0, "f1_1": 2 / 3, "f1_2": 2 / 3}
    )
    bce, ce = get_task("classification", 2, "bce"), get_task("classification", 2, "ce")
    assert set(bce.metric_dict()) == {"map", "map_micro", "f1"}
    assert set(ce.metric_dict()) == {"map", "f1", "accuracy"}
    probs = torch.tensor([[0.9, 0.2], [0.4, 0.7]])
    # per sample over its labels: row 1 predicts {0} of {0, 1} (F1 2/3, AP 1), row 2 {1} of {1}
    assert bce.sample_metrics(probs, torch.tensor([[1, 1], [0, 1]])) == pytest.approx(
        {"label_accuracy": 0.75, "f1": (2 / 3 + 1) / 2, "map": 1.0, "map_micro": 1.0}
    )
    # row 2: the true class 0 ranks second -> AP 1/2
    assert ce.sample_metrics(probs, torch.tensor([0, 0])) == pytest.approx(
        {"accuracy": 0.5, "f1": 0.5, "map": (1 + 0.5) / 2}
    )


def test_scene_sample_metrics_defined_per_sample() -> None:
    bce = get_task("classification", 4, "bce")
    p = torch.tensor([[0.9, 0.6, 0.3, 0.1]])
    # truth {0, 2}: predicted {0, 1} -> F1 = 2*1/(2+2); ranking 0 (P=1), 2 at rank 3 (P=2/3)
    got = bce.sample_metrics(p, torch.tensor([[1, 0, 1, 0]]))
    assert got == pytest.approx(
        {"f1": 0.5, "map": (1 + 2 / 3) / 2, "map_micro": (1 + 2 / 3) / 2, "label_accuracy": 0.5}
    )
    none = bce.sample_metrics(torch.tensor([[0.1, 0.2, 0.3, 0.4]]), torch.tensor([[0, 0, 0, 0]]))
    assert math.isnan(none["map"]) and math.isnan(none["f1"]) and none["label_accuracy"] == 1.0


def test_segmentation_iou_is_defined_per_sample() -> None:
    seg3 = get_task("segmentation", 3)
    binary = get_task("segmentation", 2).named(["Dry", "Water"])
    # 3 classes, class 2 absent from truth and prediction: the macro mean over classes 0 and 1
    # (IoU 2/4 and 1/3; F1 4/6 and 2/4), not NaN and not dragged down by class 2, which
    # scores 1 on its own (nothing to find, nothing found)
    got = seg3.sample_metrics(torch.tensor([0, 0, 1, 1, 0]), torch.tensor([0, 0, 1, 0, 1]))
    assert got["accuracy"] == pytest.approx(0.6) and got["iou_2"] == 1.0
    assert (got["iou_macro"], got["f1_macro"]) == pytest.approx((5 / 12, 7 / 12))
    assert (got["iou_1"], got["f1_1"]) == pytest.approx((1 / 3, 2 / 4))
    # binary: each class by its name, the water class's IoU besides the macro mean
    pred, true = torch.tensor([1, 1, 0, 0, 0, 1]), torch.tensor([1, 0, 0, 0, 1, 1])
    got = binary.sample_metrics(pred, true)
    assert (got["iou_water"], got["f1_water"]) == pytest.approx((2 / 4, 4 / 6))
    assert (got["iou_dry"], got["iou_macro"]) == pytest.approx((2 / 4, (2 / 4 + 2 / 4) / 2))
    # a dry tile predicted dry: nothing to find, nothing found
    dry = binary.sample_metrics(torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.long))
    assert dry == {
        "accuracy": 1.0, "iou_macro": 1.0, "f1_macro": 1.0,
        "iou_dry": 1.0, "iou_water": 1.0, "f1_dry": 1.0, "f1_water": 1.0,
    }  # fmt: skip
    # pooled over a split: the same counts; -1 (no data) pixels left out
    coll = binary.metrics()
    coll.update(torch.cat([pred, torch.tensor([1])]), torch.cat([true, torch.tensor([-1])]))
    pooled = {k: float(v) for k, v in coll.compute().items()}
    assert (pooled["iou_water"], pooled["f1_water"]) == pytest.approx((0.5, 2 / 3))
    assert list(binary.metric_dict())[:2] == ["iou_water", "f1_water"]  # the headline first


def test_class_scores_equal_an_independent_confusion_matrix() -> None:
    rng = np.random.default_rng(3)
    true = rng.integers(-1, 3, size=500)  # -1: no data
    pred = np.where(rng.random(500) < 0.6, true, rng.integers(0, 3, size=500)).clip(0)
    keep = true >= 0
    cm = np.zeros((3, 3))
    np.add.at(cm, (true[keep], pred[keep]), 1)  # rows: truth, columns: prediction
    hit, n_true, n_pred = np.diag(cm), cm.sum(1), cm.sum(0)
    iou, f1 = hit / (n_true + n_pred - hit), 2 * hit / (n_true + n_pred)
    seg = get_task("segmentation", 3).named(["a", "b", "c"])
    coll = seg.metrics()
    for part in np.array_split(np.arange(500), 4):  # pooled over batches
        coll.update(torch.from_numpy(pred[part]), torch.from_numpy(true[part]))
    got = {k: float(v) for k, v in coll.compute().items()}
    assert [got[f"iou_{c}"] for c in "abc"] == pytest.approx(iou.tolist())
    assert [got[f"f1_{c}"] for c in "abc"] == pytest.approx(f1.tolist())
    assert (got["iou_macro"], got["f1_macro"]) == pytest.approx((iou.mean(), f1.mean()))
    assert got["accuracy"] == pytest.approx(hit.sum() / cm.sum())


def test_headline_metric_per_task() -> None:
    assert get_task("regression").headline == "mae"
    assert get_task("segmentation", 2).headline == "iou_1"
    assert get_task("segmentation", 2).named(["dry", "Open water"]).headline == "iou_open_water"
    assert get_task("segmentation", 4).headline == "iou_macro"
    assert get_task("classification", 3, "ce").headline == "map"
    assert get_task("classification", 3, "bce").headline == "map"
    # from a table's columns (ours list the headline first); earlier files' names too
    binary = list(get_task("segmentation", 2).named(["dry", "water"]).metric_dict())
    assert headline_metric("segmentation", ["id", "n", "loss", *binary]) == "iou_water"
    assert headline_metric("segmentation", ["accuracy", "iou", "iou_positive"]) == "iou_positive"
    assert headline_metric("segmentation", ["accuracy", "f1", "iou"]) == "iou"
    assert headline_metric("regression", ["rmse", "mae"]) == "mae"
    assert headline_metric("segmentation", ["accuracy"]) is None
    assert headline_metric(None, ["mae"]) is None and headline_metric("other", ["mae"]) is None


def test_worse_by_is_signed_for_both_directions() -> None:
    assert lower_is_better("mae") and lower_is_better("aux_s1_rmse") and lower_is_better("loss")
    assert not lower_is_better("iou") and not lower_is_better("map_micro")
    # MAE 0.30 -> 0.25 and IoU 0.70 -> 0.75: both better, so both negative
    assert worse_by(0.25, 0.30, "mae") == pytest.approx(-0.05)
    assert worse_by(0.75, 0.70, "iou") == pytest.approx(-0.05)
    assert worse_by(0.40, 0.30, "rmse") == pytest.approx(0.10)
    assert worse_by(0.60, 0.70, "accuracy") == pytest.approx(0.10)
    np.testing.assert_allclose(worse_by(np.array([0.5, 0.9]), 0.7, "f1"), [0.2, -0.2])


# ------------------------------------------------------------------------------ outputs
def test_postprocessing_and_what_predict_writes() -> None:
    logits = torch.randn(2, 3, 4, 4)
    seg = get_task("segmentation", 3)
    probs = seg.postprocess(logits)
    assert torch.allclose(probs.sum(1), torch.ones(2, 4, 4))
    assert torch.equal(get_task("regression").postprocess(logits), logits)
    scores = np.zeros((3, 2, 2), np.float32)
    scores[2, 0, 0] = scores[1, 0, 1] = scores[0, 1, 0] = 1.0
    valid = np.array([[True, True], [True, False]])
    mask_target = TargetSpec("classes", SourceFile("m/{id}.tif"), classes=(10, 20, 300))
    raster = seg.prediction_raster(scores, valid, mask_target)
    assert raster.array.dtype == np.uint16 and raster.nodata == 65535  # 300 needs 16 bits
    assert raster.array.tolist() == [[300, 20], [10, 65535]]
    assert raster.tags == {"classes": "10,20,300"} and raster.band_names == ["class"]
    ni = TargetSpec("continuous", SourceFile("NI/{id}.tif"), scale=100.0)
    values = np.full((1, 2, 2), 0.5, np.float32)
    raster = get_task("regression").prediction_raster(values, valid, ni)
    assert raster.array[0, 0, 0] == 50.0 and np.isnan(raster.array[0, 1, 1])
    assert raster.tags == {"scale": 100.0} and np.isnan(raster.nodata)
    with pytest.raises(ModelError, match="does not predict maps"):
        get_task("classification", 3).prediction_raster(values, valid, ni)
    with pytest.raises(ModelError, match="does not predict scene labels"):
        seg.scene_prediction(torch.zeros(3), None)


def test_scene_prediction_labels() -> None:
    logits = torch.tensor([[2.0, -2.0, 0.1]])
    bce, ce = get_task("classification", 3, "bce"), get_task("classification", 3, "ce")
    multi = bce.scene_prediction(bce.postprocess(logits)[0], ["a", "b", "c"])
    assert multi["predicted"] == ["a", "c"] and multi["multilabel"] is True
    assert multi["probabilities"]["a"] == round(1 / (1 + math.exp(-2.0)), 6)
    single = ce.scene_prediction(ce.postprocess(logits)[0], None)
    assert single["predicted"] == ["0"] and single["multilabel"] is False
    assert sum(single["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
