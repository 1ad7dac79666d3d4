"""Dict-of-tensors inputs: batches ``{"image": {"s2": x2, "s1": x1}, ...}`` and models whose
forward takes such a dict (TerraTorch-style multimodal models).

:class:`DictLayout` packs the modality tensors of a batch into one tensor on the channel axis
(keys in the order of the first batch): modalities with equal spatial shapes are concatenated
``[B, sum C, *S]``; otherwise each is flattened to ``[B, C_k, N_k]`` and zero-padded to the
largest ``N``. :class:`DictInputModel` unpacks that tensor and calls the user's model with the
dict, so the engine occludes, fills and batches exactly as for tensor models: occluding a
group replaces its channels of its key only. :func:`adapt_to_dict` turns the model, the groups
and the embedding option into their packed equivalents: groups are named by the dict keys by
default (``"bands"``: one per channel, ``key:index``; or ``{name: [keys]}`` /
``{name: {key: [channels]}}``); an embedding submodule name or ``fn(model, x_dict)`` is used
as for tensor models.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import DataError, SpecError
from .options import AttributionOptions

#: group specs that give one group per dict key
KEY_GROUPINGS = (None, "keys", "modalities")


class DictLayout:
    """Where each key of a dict-of-tensors input lives in the packed tensor.

    Args:
        image: one batch's ``{key: Tensor [B, C, *S]}``.

    Raises:
        DataError: an empty dict or a value that is not a ``[B, C, ...]`` tensor.
    """

    def __init__(self, image: Mapping[str, Any]) -> None:
        if not image:
            raise DataError("a batch's image dict is empty", "batches", "give one tensor per key")
        self.keys = [str(k) for k in image]
        self.shapes: list[tuple[int, ...]] = []
        for k, v in image.items():
            t = torch.as_tensor(v)
            if t.ndim < 2:
                raise DataError(
                    f"image[{k!r}] has shape {tuple(t.shape)}", "batches", "give [B, C, ...]"
                )
            self.shapes.append(tuple(int(s) for s in t.shape[1:]))
        self.channels = [s[0] for s in self.shapes]
        self.same = len({s[1:] for s in self.shapes}) == 1
        self.length = max(_numel(s[1:]) for s in self.shapes)
        starts = [sum(self.channels[:i]) for i in range(len(self.channels))]
        self.slices = {
            k: slice(a, a + c) for k, a, c in zip(self.keys, starts, self.channels, strict=True)
        }

    @property
    def n_channels(self) -> int:
        """Channels of the packed tensor."""
        return sum(self.channels)

    def pack(self, image: Mapping[str, Any]) -> Tensor:
        """One ``[B, sum C, ...]`` float tensor from ``{key: [B, C, *S]}``.

        Raises:
            DataError: other keys or shapes than the first batch's.
        """
        if [str(k) for k in image] != self.keys:
            raise DataError(
                f"a batch's image keys {list(image)} differ from the first batch's {self.keys}",
                "batches",
                "give every batch the same modality keys in the same order",
            )
        parts = []
        for k, shape in zip(self.keys, self.shapes, strict=True):
            t = torch.as_tensor(image[k])
            t = t if t.is_floating_point() else t.float()
            if tuple(t.shape[1:]) != shape:
                raise DataError(
                    f"image[{k!r}] has sample shape {tuple(t.shape[1:])}, the first batch {shape}",
                    "batches",
                    "keep each modality's shape fixed across batches",
                )
            if not self.same:
                t = t.reshape(t.shape[0], shape[0], -1)
                t = nn.functional.pad(t, (0, self.length - t.shape[-1]))
            parts.append(t)
        dtype = torch.promote_types(*(p.dtype for p in parts)) if len(parts) > 1 else None
        return torch.cat([p.to(dtype) if dtype else p for p in parts], dim=1)

    def unpack(self, x: Tensor) -> dict[str, Tensor]:
        """``{key: [n, C, *S]}`` views of a packed tensor ``x``."""
        out = {}
        for k, shape in zip(self.keys, self.shapes, strict=True):
            part = x[:, self.slices[k]]
            if not self.same:
                part = part[..., : _numel(shape[1:])].reshape(x.shape[0], *shape)
            out[k] = part
        return out

    def groups(self, spec: Any) -> dict[str, list[int]] | Any:
        """Packed channel groups of a group spec (see the module docstring); integer groups
        are returned unchanged (they index the packed channels).

        Raises:
            SpecError: an unknown key or grouping.
        """
        if spec in KEY_GROUPINGS:
            return {k: list(range(s.start, s.stop)) for k, s in self.slices.items()}
        if spec == "bands":
            return {
                f"{k}:{i}": [s.start + i]
                for k, s in self.slices.items()
                for i in range(s.stop - s.start)
            }
        if isinstance(spec, str):
            raise SpecError(f"unknown grouping {spec!r}", "groups", "use keys, bands or a mapping")
        if not isinstance(spec, Mapping):
            return spec
        out: dict[str, Any] = {}
        for name, val in spec.items():
            if isinstance(val, str) or (
                isinstance(val, Sequence) and val and all(isinstance(v, str) for v in val)
            ):
                val = {v: None for v in ([val] if isinstance(val, str) else val)}
            if isinstance(val, Mapping):
                chans: list[int] = []
                for key, idx in val.items():
                    sl = self.slices.get(str(key))
                    if sl is None:
                        raise SpecError(
                            f"group {name!r} names key {key!r}, not in the batch's image",
                            "groups",
                            f"use the keys {', '.join(self.keys)}",
                        )
                    local = range(sl.stop - sl.start) if idx is None else _indices(idx)
                    chans.extend(sl.start + (i % (sl.stop - sl.start)) for i in local)
                out[str(name)] = chans
            else:
                out[str(name)] = val
        return out


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _indices(idx: Any) -> list[int]:
    if isinstance(idx, int):
        return [idx]
    return [int(i) for i in idx]


class DictInputModel(nn.Module):
    """``model`` called with the dict a packed tensor stands for (see :class:`DictLayout`)."""

    def __init__(self, model: nn.Module, layout: DictLayout) -> None:
        super().__init__()
        self.model = model
        self.layout = layout

    def forward(self, x: Tensor) -> Any:
        """The user's model on ``layout.unpack(x)``."""
        return self.model(self.layout.unpack(x))


def _method_embedding(name: str) -> Callable[[DictInputModel, Tensor], Any]:
    def fn(m: DictInputModel, x: Tensor) -> Any:
        return getattr(m.model, name)(m.layout.unpack(x))

    fn.__name__ = name
    return fn


def _user_embedding(user: Callable[..., Any]) -> Callable[[DictInputModel, Tensor], Any]:
    def fn(m: DictInputModel, x: Tensor) -> Any:
        return user(m.model, m.layout.unpack(x))

    fn.__name__ = getattr(user, "__name__", "callable")
    return fn


def dict_embedding(model: nn.Module, embedding: Any) -> Any:
    """The embedding option for the wrapped model: ``encode``/``embed`` of the user's model
    (``"auto"``: the first it has) and ``fn(model, x_dict)`` called on the dict; a submodule
    name is looked up in the user's model."""
    if callable(embedding) and not isinstance(embedding, str):
        return _user_embedding(embedding)
    if embedding in (None, "auto"):
        for name in ("encode", "embed"):
            if callable(getattr(model, name, None)):
                return _method_embedding(name)
        return "model"  # let the engine's error list the wrapped model's parts
    if embedding in ("encode", "embed"):
        return _method_embedding(str(embedding))
    return f"model.{embedding}"


def is_dict_batch(raw: Any) -> bool:
    """Whether a raw batch has a dict of modality tensors as its ``image``."""
    return isinstance(raw, Mapping) and isinstance(raw.get("image"), Mapping)


def pack_batch(raw: Mapping[str, Any], layout: DictLayout) -> dict[str, Any]:
    """``raw`` with its image dict packed into one tensor."""
    return {**raw, "image": layout.pack(raw["image"])}


def adapt_to_dict(
    model: nn.Module, groups: Any, options: AttributionOptions, first: Mapping[str, Any]
) -> tuple[DictInputModel, Any, AttributionOptions, DictLayout]:
    """The packed equivalents of a dict model's inputs, given its first raw batch.

    Returns:
        ``(wrapped model, packed groups, options with the embedding adapted, layout)``.

    Raises:
        SpecError: a channel axis other than 1, or groups naming unknown keys.
    """
    if options.channel_axis != 1:
        raise SpecError(
            "dict-of-tensors inputs need channel_axis=1 (each value [B, C, ...])",
            "channel_axis",
            "leave channel_axis at 1",
        )
    layout = DictLayout(first["image"])
    opts = options
    if any(lv != "output" and lv != "loss" for lv in options.levels):
        opts = options.replace(embedding=dict_embedding(model, options.embedding))
    return DictInputModel(model, layout), layout.groups(groups), opts, layout
