"""TODO docstring: attribution/forward.py"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from ..errors import ModelError


class _Stop(Exception):
    """Raised by the embedding hook to cut a forward short."""


def _first_tensor(obj: Any) -> Tensor:
    if isinstance(obj, Tensor):
        return obj
    if isinstance(obj, list | tuple) and obj:
        return _first_tensor(obj[-1] if isinstance(obj, list) else obj[0])
    if isinstance(obj, Mapping) and obj:
        return _first_tensor(next(iter(obj.values())))
    raise ModelError(f"expected a tensor, the model returned {type(obj).__name__}")


class _Forward:
    """Evaluates a prepared model: ``(embedding or None, output or None)`` for a batch."""

    def __init__(
        self, model: nn.Module, embedding: Any, need_embedding: bool, need_output: bool
    ) -> None:
        self.model = model
        self.need_embedding = need_embedding
        self.need_output = need_output
        self.hook_store: dict[str, Tensor] = {}
        self.mode = "none"
        if not need_embedding:
            return
        if callable(embedding) and not isinstance(embedding, str):
            self.mode, self.fn = "callable", embedding
            return
        if embedding in (None, "auto"):
            if callable(getattr(model, "encode", None)):
                embedding = "encode"
            elif callable(getattr(model, "embed", None)):
                embedding = "embed"
            else:
                names = [n for n, _ in model.named_children()]
                raise ModelError(
                    f"the model ({type(model).__name__}) has no encode()/embed()",
                    "embedding",
                    "name the submodule whose output is the embedding, e.g. embedding="
                    + (repr(names[0]) if names else "'encoder'"),
                )
        if embedding == "encode":
            self.mode = "encode"
            self.can_decode = callable(getattr(model, "decode", None))
        elif embedding == "embed":
            self.mode = "embed"
        else:
            try:
                sub = model.get_submodule(str(embedding))
            except AttributeError:
                names = [n for n, _ in model.named_modules() if n][:8]
                raise ModelError(
                    f"the model has no submodule {embedding!r}",
                    "embedding",
                    f"use one of {', '.join(names)}" if names else "use encode",
                ) from None
            self.mode = "hook"
            sub.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, inputs: Any, output: Any) -> None:
        self.hook_store["emb"] = _first_tensor(output)
        if not self.need_output:
            raise _Stop

    def __call__(self, x: Tensor) -> tuple[Tensor | None, Tensor | None]:
        m = self.model
        emb = out = None
        if self.mode == "none":
            return None, _first_tensor(m(x))
        if self.mode == "encode":
            feats = m.encode(x)
            # a list/tuple of features (e.g. skips then bottleneck): the last is the embedding
            emb = _first_tensor(feats[-1] if isinstance(feats, list | tuple) and feats else feats)
            if self.need_output:
                out = _first_tensor(m.decode(feats) if self.can_decode else m(x))
        elif self.mode == "embed":
            emb = _first_tensor(m.embed(x))
            if self.need_output:
                out = _first_tensor(m(x))
        elif self.mode == "callable":
            emb = _first_tensor(self.fn(m, x))
            if self.need_output:
                out = _first_tensor(m(x))
        else:
            self.hook_store.clear()
            try:
                out = _first_tensor(m(x))
            except _Stop:
                out = None
            emb = self.hook_store.pop("emb", None)
            if emb is None:
                raise ModelError("the embedding submodule did not run in the forward pass")
        return emb, out
