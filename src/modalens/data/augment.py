"""Training augmentations (the paper's list) with kornia, batched on tensors.

``Augmentation({"hflip": 0.5, "vflip": 0.5, "sharpness": 0.2, "erasing": 0.2, "blur": 0.2})``
gives each op's probability (a value may also be a dict with ``p`` and the op's options, e.g.
``{"blur": {"p": 0.2, "kernel_size": 5, "sigma": [0.1, 2.0]}}``; 0 or a missing key = off).

- Geometric ops (``hflip``, ``vflip``) are applied identically to the image, the target when it
  is a map ([B,1,H,W] float or [B,H,W] class indices) and the validity mask [B,H,W].
- Photometric ops (``sharpness``, ``erasing``, ``blur``) touch the image only. Kornia's
  sharpness clamps to [0, 1], so it runs on each channel rescaled to [0, 1] and is mapped back
  (normalised inputs are not in [0, 1]). Erased pixels are set to 0 (the "no data" value).

Augmentation is for training; the caller leaves it off for val/test. Pass ``seed=`` to a call
(or to the constructor, for a reproducible stream of calls) for the same result on CPU.

Training augments each batch after it reached the device (the Lightning module's
``on_after_batch_transfer``): :func:`augment_batch` applies the augmentation to every item with
the item's own seed (``aug_seed``, set by the dataset from ``(seed, epoch, draw, index)``), so the
result depends neither on the batch composition nor on the number of processes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import kornia.augmentation as K
import torch

from ..errors import SpecError

#: the item (and batch) key of a training crop's augmentation seed
AUG_SEED = "aug_seed"


DEFAULT_AUGMENT = {"hflip": 0.5, "vflip": 0.5, "sharpness": 0.2, "erasing": 0.2, "blur": 0.2}


GEOMETRIC = ("hflip", "vflip")


PHOTOMETRIC = ("sharpness", "erasing", "blur")


_OPTIONS: dict[str, set[str]] = {
    "hflip": set(),
    "vflip": set(),
    "sharpness": {"sharpness"},
    "erasing": {"scale", "ratio", "value"},
    "blur": {"kernel_size", "sigma"},
}


def _build(name: str, p: float, opts: Mapping[str, Any]) -> Any:
    if name == "hflip":
        return K.RandomHorizontalFlip(p=p)
    if name == "vflip":
        return K.RandomVerticalFlip(p=p)
    if name == "sharpness":
        return K.RandomSharpness(sharpness=float(opts.get("sharpness", 0.5)), p=p)
    if name == "erasing":
        return K.RandomErasing(
            scale=tuple(opts.get("scale", (0.02, 0.2))),
            ratio=tuple(opts.get("ratio", (0.3, 3.3))),
            value=float(opts.get("value", 0.0)),
            p=p,
        )
    if name == "blur":
        k = int(opts.get("kernel_size", 5))
        return K.RandomGaussianBlur((k, k), tuple(opts.get("sigma", (0.1, 2.0))), p=p)
    raise AssertionError(name)


def parse_config(config: Mapping[str, Any] | None) -> dict[str, tuple[float, dict[str, Any]]]:
    """Validate an augmentation config: ``{op: p}`` or ``{op: {"p": p, ...options}}``."""
    out: dict[str, tuple[float, dict[str, Any]]] = {}
    for name, value in (config or {}).items():
        if name not in _OPTIONS:
            raise SpecError(
                f"unknown augmentation {name!r}",
                f"key 'augment.{name}'",
                f"choose from {', '.join(_OPTIONS)}",
            )
        opts: dict[str, Any] = {}
        if isinstance(value, Mapping):
            opts = dict(value)
            unknown = sorted(set(opts) - _OPTIONS[name] - {"p"})
            if unknown:
                raise SpecError(
                    f"unknown option {unknown[0]!r} for augmentation {name!r}",
                    f"key 'augment.{name}.{unknown[0]}'",
                    f"options: p{''.join(', ' + o for o in sorted(_OPTIONS[name]))}",
                )
            value = opts.pop("p", 0.5)
        if isinstance(value, bool):
            value = DEFAULT_AUGMENT[name] if value else 0.0
        try:
            p = float(value)
        except (TypeError, ValueError):
            p = -1.0
        if not 0.0 <= p <= 1.0:
            raise SpecError(
                f"augmentation probability must be in [0, 1], got {value!r}",
                f"key 'augment.{name}'",
                "e.g. hflip: 0.5",
            )
        if p > 0:
            out[name] = (p, opts)
    return out


class Augmentation:
    """Callable ``(image, target=None, valid=None, seed=None) -> (image, target, valid)``."""

    def __init__(self, config: Mapping[str, Any] | None = None, seed: int | None = None) -> None:
        self.config = parse_config(DEFAULT_AUGMENT if config is None else config)
        self.geometric = [
            (n, _build(n, p, o)) for n, (p, o) in self.config.items() if n in GEOMETRIC
        ]
        self.photometric = [
            (n, _build(n, p, o)) for n, (p, o) in self.config.items() if n in PHOTOMETRIC
        ]
        self._gen: torch.Generator | None = None
        if seed is not None:
            self._gen = torch.Generator().manual_seed(int(seed))

    def __repr__(self) -> str:
        ops = ", ".join(f"{n}={p:g}" for n, (p, _) in self.config.items())
        return f"Augmentation({ops})"

    @property
    def enabled(self) -> bool:
        return bool(self.config)

    def __call__(
        self,
        image: torch.Tensor,
        target: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
        seed: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        if image.ndim != 4:
            raise ValueError(f"expected a batched image [B,C,H,W], got shape {tuple(image.shape)}")
        if not self.config:
            return image, target, valid
        if seed is None and self._gen is not None:
            seed = int(torch.randint(0, 2**62, (1,), generator=self._gen))
        if seed is None:
            return self._apply(image, target, valid)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            return self._apply(image, target, valid)

    def _apply(
        self, image: torch.Tensor, target: torch.Tensor | None, valid: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        B, _, H, W = image.shape
        target_is_map = (
            target is not None and target.ndim in (3, 4) and (tuple(target.shape[-2:]) == (H, W))
        )
        for _, op in self.geometric:
            image = op(image)
            params = op._params
            if target is not None and target_is_map:
                target = _apply_to_map(op, target, params)
            if valid is not None:
                valid = _apply_to_map(op, valid, params)
        for name, op in self.photometric:
            if name == "sharpness":
                image = _sharpness(op, image)
            else:
                image = op(image)
        return image, target, valid


def _apply_to_map(op: Any, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Apply a geometric op with the image's parameters to a [B,H,W] or [B,1,H,W] map."""
    squeeze = x.ndim == 3
    y = x[:, None] if squeeze else x
    dtype = y.dtype
    out = op(y.to(torch.float32), params=params)
    if dtype == torch.bool:
        out = out > 0.5
    elif not dtype.is_floating_point:
        out = out.round().to(dtype)
    else:
        out = out.to(dtype)
    return out[:, 0] if squeeze else out


def _sharpness(op: Any, image: torch.Tensor) -> torch.Tensor:
    lo = image.amin(dim=(2, 3), keepdim=True)
    hi = image.amax(dim=(2, 3), keepdim=True)
    span = (hi - lo).clamp_min(1e-12)
    out = op((image - lo) / span)
    return out * span + lo


def augment_batch(
    augmentation: Augmentation,
    batch: Mapping[str, Any],
    maps: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """Augment every item of a collated training batch with its own seed (``aug_seed``).

    The image, the target (when it is a map) and the validity mask get one draw per item;
    each ``(value key, validity key)`` pair in ``maps`` (a multitask run's auxiliary targets)
    gets the same geometric draw (same seed; geometric ops run first).

    Args:
        augmentation: the run's augmentation.
        batch: ``image`` [B,C,H,W], ``target``, ``valid`` [B,H,W] and ``aug_seed`` [B].
        maps: auxiliary target keys augmented with the image.

    Returns:
        A new batch dict (the input batch when it has no seeds or nothing is enabled).
    """
    if not augmentation.enabled or AUG_SEED not in batch:
        return dict(batch)
    out = dict(batch)
    seeds = [int(s) for s in batch[AUG_SEED].tolist()]
    image, target, valid = batch["image"], batch["target"], batch.get("valid")
    images: list[torch.Tensor] = []
    targets: list[torch.Tensor] = []
    valids: list[torch.Tensor] = []
    extra: dict[str, list[torch.Tensor]] = {k: [] for pair in maps for k in pair}
    for i, seed in enumerate(seeds):
        one = slice(i, i + 1)
        img, tgt, ok = augmentation(
            image[one], target[one], None if valid is None else valid[one], seed=seed
        )
        assert tgt is not None  # a tensor in gives a tensor out
        images.append(img)
        targets.append(tgt)
        if ok is not None:
            valids.append(ok)
        for key, vkey in maps:
            _, a_val, a_ok = augmentation(image[one], batch[key][one], batch[vkey][one], seed)
            assert a_val is not None and a_ok is not None
            extra[key].append(a_val)
            extra[vkey].append(a_ok)
    out["image"], out["target"] = torch.cat(images), torch.cat(targets)
    if valid is not None:
        out["valid"] = torch.cat(valids)
    for key, parts in extra.items():
        out[key] = torch.cat(parts)
    return out
