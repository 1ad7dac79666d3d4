"""Loss weighting (fixed and learned) and the config's auxiliary section."""

from __future__ import annotations

import pytest
import torch
from helpers import mtl_config

from modalens.errors import SpecError
from modalens.tasks import LossWeighting
from modalens.training import load_config, spec_from_config
from modalens.training.module import build_module


def test_fixed_weights_combine_losses_as_configured():
    w = LossWeighting(["main", "s1", "viirs"], {"s1": 0.5, "viirs": 2.0})
    total = w({"main": torch.tensor(1.0), "s1": torch.tensor(4.0), "viirs": torch.tensor(3.0)})
    assert float(total) == pytest.approx(1.0 + 0.5 * 4.0 + 2.0 * 3.0)
    assert w.weights() == {"main": 1.0, "s1": 0.5, "viirs": 2.0} and not list(w.parameters())


def test_module_total_loss_uses_the_config_weights(mapinwild_root):
    cfg = load_config(
        mtl_config(mapinwild_root, weight=0.25, targets={"s1": {"weight": 3.0}, "viirs": {}})
    )
    targets = cfg.auxiliary.targets
    assert targets["s1"].weight == 3.0 and targets["viirs"].weight == 0.25
    assert cfg.auxiliary.targets["viirs"].loss == "mae"
    module = build_module(cfg, spec_from_config(cfg))
    losses = {"main": torch.tensor(2.0), "s1": torch.tensor(1.0), "viirs": torch.tensor(4.0)}
    assert float(module.weighting(losses)) == pytest.approx(2.0 + 3.0 + 1.0)


def test_uncertainty_gives_the_noisier_task_the_larger_variance():
    # two regression targets of the same input: one exact, one with planted noise (std 1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 4, generator=g)
    clean = x @ torch.tensor([1.0, -2.0, 0.5, 0.0])
    noisy = x @ torch.tensor([0.5, 1.0, 0.0, -1.0]) + torch.randn(512, generator=g)
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    weighting = LossWeighting(["clean", "noisy"], method="uncertainty")
    opt = torch.optim.Adam([*model.parameters(), *weighting.parameters()], lr=0.05)
    for _ in range(300):
        out = model(x)
        losses = {
            "clean": ((out[:, 0] - clean) ** 2).mean(),
            "noisy": ((out[:, 1] - noisy) ** 2).mean(),
        }
        opt.zero_grad()
        weighting(losses).backward()
        opt.step()
    s = weighting.log_vars()
    # exp(s) tends to the task's loss: about 1 (the noise variance) for the noisy task
    assert s["noisy"] > s["clean"] + 2.0
    assert s["noisy"] == pytest.approx(0.0, abs=0.3)
    assert weighting.weights()["clean"] > 10 * weighting.weights()["noisy"]


def _error(cfg: dict) -> str:
    with pytest.raises(SpecError) as info:
        load_config(cfg)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_config_errors_name_the_dotted_key(mapinwild_root):
    cfg = mtl_config(mapinwild_root, weighting="learned")
    assert "auxiliary.weighting" in _error(cfg)
    cfg = mtl_config(mapinwild_root, targets={"s1": {"weight": -1}})
    assert "auxiliary.targets.s1.weight" in _error(cfg)
    cfg = mtl_config(mapinwild_root, targets={"esa_wc": {"loss": "mse"}})
    assert "auxiliary.targets.esa_wc.loss" in _error(cfg)
    cfg = mtl_config(mapinwild_root, targets={"s1": {"los": "mse"}})
    assert "auxiliary.targets.s1.los" in _error(cfg)
    cfg = mtl_config(mapinwild_root, targets=["sar"])
    assert "auxiliary.targets" in _error(cfg) and "sar" in _error(cfg)
    cfg = mtl_config(mapinwild_root)
    cfg["inputs"] = ["s2", "s1"]
    assert "both an input and an auxiliary target" in _error(cfg)
    cfg = mtl_config(mapinwild_root, decoder="both")
    assert "auxiliary.decoder" in _error(cfg)


def test_inputs_default_to_every_modality_not_auxiliary(mapinwild_root):
    cfg = mtl_config(mapinwild_root, targets=["viirs"])
    del cfg["inputs"]
    spec = spec_from_config(load_config(cfg))
    assert spec.modality_names == ["s2", "s1", "esa_wc"] and spec.auxiliary_names == ["viirs"]
    assert spec.n_channels == 13
