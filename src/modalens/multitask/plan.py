"""The models a multitask comparison trains from one multitask run config.

From a config with ``inputs`` and ``auxiliary`` (:mod:`modalens.training.auxconfig`),
:func:`plan_models` makes three settings (:class:`~modalens.validation.settings.Setting`) that
differ only in what the model sees and predicts; everything else -- data, model size, schedule,
seed -- is the config's:

- ``unimodal``: the input modalities only, no auxiliary heads;
- ``fusion``: the input modalities *and* the auxiliary modalities as inputs (input-level
  multimodal fusion), no auxiliary heads;
- ``multitask``: the input modalities, the auxiliary modalities predicted by their heads.

:func:`model_config` is the run config of one setting and seed. :func:`main_metric` names the
task's headline metric and whether lower is better.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import SpecError
from ..tasks.headline import headline_metric, lower_is_better
from ..training.config import load_config, spec_from_config
from ..validation.settings import Setting

#: the models compared, in table order
MODELS = ("unimodal", "fusion", "multitask")

#: the headline metric of each task when a table does not say (and whether lower is better)
MAIN_METRICS = {
    "regression": ("mae", True),
    "segmentation": ("iou_macro", False),
    "classification": ("map", False),
}


def main_metric(task: str, available: Iterable[str] = ()) -> tuple[str, bool]:
    """The headline metric of ``task`` among the ``available`` metric names
    (:func:`~modalens.tasks.headline.headline_metric`: for a binary segmentation the positive
    class's IoU, e.g. ``iou_water``), else :data:`MAIN_METRICS`'s, and whether lower is
    better."""
    name = headline_metric(task, available) or MAIN_METRICS.get(task, ("loss", True))[0]
    return name, lower_is_better(name)


def plan_models(config: Mapping[str, Any], source: str | None = None) -> list[Setting]:
    """The three settings of a comparison (see the module docstring).

    Args:
        config: a multitask run config as plain data with absolute paths
            (:func:`modalens.training.config.read_raw_config`).
        source: its file, named in errors.

    Returns:
        ``unimodal``, ``fusion``, ``multitask``; ``use`` holds each model's input modalities
        in the dataset's order.

    Raises:
        SpecError: the config has no ``auxiliary`` section or is invalid.
    """
    cfg = load_config(config)
    if cfg.auxiliary is None:
        raise SpecError(
            "the config names no auxiliary modalities",
            f"key 'auxiliary' in {source}" if source else "key 'auxiliary'",
            "add auxiliary: {targets: [s1, ...]} (see configs/mtl-regression.yaml)",
        )
    spec = spec_from_config(cfg, source)
    inputs = tuple(spec.modality_names)
    aux = tuple(spec.auxiliary_names)
    order = [m.name for m in spec.flat().modalities]
    everything = tuple(sorted((*inputs, *aux), key=order.index))
    return [
        Setting("unimodal", "unimodal", None, inputs, f"unimodal ({'+'.join(inputs)})"),
        Setting("fusion", "fusion", None, everything, f"input fusion ({'+'.join(everything)})"),
        Setting(
            "multitask",
            "multitask",
            None,
            inputs,
            f"multitask ({'+'.join(inputs)} -> {'+'.join(aux)})",
        ),
    ]


def model_config(config: Mapping[str, Any], setting: Setting, seed: int) -> dict[str, Any]:
    """The run config of one model of the comparison.

    Args:
        config: the multitask config (plain data, absolute paths).
        setting: one of :func:`plan_models`' settings.
        seed: ``train.seed``.

    Returns:
        A copy of ``config`` with ``use`` (the setting's inputs), no ``inputs``/``drop``, the
        seed, and the ``auxiliary`` section kept only for the multitask model.
    """
    out = copy.deepcopy(dict(config))
    out.pop("inputs", None)
    out["use"] = list(setting.use)
    out["drop"] = None
    if setting.kind != "multitask":
        out.pop("auxiliary", None)
    train = out.get("train") or {}
    out["train"] = {**dict(train), "seed": int(seed)}
    out["name"] = f"{out.get('name') or 'mtl'}-{setting.name}"
    return out
