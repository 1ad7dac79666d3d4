"""Forwards through the model: the embedding, the output, the prepared copy and chunking.

:class:`Forward` evaluates a model to ``(embedding or None, output or None)``: the embedding is
our U-Net's ``encode()`` bottleneck (only the encoder runs when the output is not needed),
``embed()``, the output of any named submodule (a forward hook; the forward is cut short after
it when the output is not needed) or a callable ``fn(model, x)``.

:class:`Runner` owns the inference copy: the model copied in eval mode with BatchNorm folded
into the preceding convolutions and Conv+ReLU fused into one oneDNN call (``optimize``;
results equal up to float rounding), channels-last for 4-D inputs, optionally bf16; it counts
the inputs it evaluates and picks chunk sizes. Callers run it under
:func:`torch.inference_mode`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ModelError
from ..models.optimize import prepare_model
from ..precision import torch_dtype


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


class Forward:
    """Evaluates a prepared model: ``(embedding or None, output or None)`` for a batch.

    Args:
        model: the (prepared) model.
        embedding: ``"auto"``, ``"encode"``, ``"embed"``, a submodule name or
            ``fn(model, x)``.
        need_embedding: compute the embedding.
        need_output: compute the output (settable: a hook cuts the forward short without).

    Raises:
        ModelError: no embedding can be found as asked.
    """

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
        """``(embedding, output)`` of ``x`` (None for what is not needed)."""
        m: Any = self.model  # duck-typed: encode/decode/embed are the user's methods
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


def balanced_chunk(n: int, budget: int) -> int:
    """Chunk length <= ``budget`` splitting ``n`` items into equal-sized chunks."""
    if n <= 0:
        return max(1, budget)
    chunks = -(-n // max(1, budget))
    return -(-n // chunks)


class Runner:
    """The prepared inference copy of a model and the forwards through it.

    Args:
        model: any ``nn.Module`` taking the stacked input.
        embedding: see :class:`Forward`.
        need_embedding: forwards compute the embedding.
        need_output: forwards compute the output.
        precision: ``fp32`` or ``bf16``.
        optimize: fold BatchNorm, fuse Conv+ReLU and use channels-last for images.
        device: where the model runs.
    """

    def __init__(
        self,
        model: nn.Module,
        embedding: Any,
        need_embedding: bool,
        need_output: bool,
        precision: str,
        optimize: bool,
        device: torch.device,
    ) -> None:
        self.source_model = model
        self.embedding = embedding
        self.need_embedding = need_embedding
        self.need_output = need_output
        self.precision = precision
        self.optimize = optimize
        self.device = device
        self.dtype = torch_dtype(precision)
        self.model: nn.Module | None = None
        self.forward: Forward | None = None
        self.channels_last = False
        self.forwards = 0  # inputs evaluated (for tests and benchmarks)

    def prepare(self, x: Tensor, channel_axis: int) -> None:
        """Build the inference copy for inputs like ``x`` (once; later calls do nothing)."""
        if self.model is not None:
            return
        ax = channel_axis % x.ndim
        self.channels_last = self.optimize and x.ndim == 4 and ax == 1
        keep = [self.embedding] if isinstance(self.embedding, str) else []
        self.model = prepare_model(
            self.source_model, self.precision, self.optimize, self.channels_last, keep
        ).to(self.device)
        self.forward = Forward(self.model, self.embedding, self.need_embedding, self.need_output)

    def chunk_length(self, x: Tensor, chunk_size: int | None) -> int:
        """Inputs per forward: ``chunk_size``, or cache-sized for inputs like ``x``."""
        if chunk_size:
            return max(1, int(chunk_size))
        # cache-sized: on CPU the high-resolution layers run fastest when one input's
        # activations stay in the last-level cache (UNet(14) at 256x256: 197 GFLOP/s at 1
        # input per forward vs 173 at 8 in fp32; bf16 best at 2), bigger chunks elsewhere
        per = max(1, x[0].numel())
        budget = 2**20 if self.dtype == torch.float32 else 2**21
        if self.device.type != "cpu":
            budget = 2**24
        return int(max(1, min(64, budget // per)))

    def cast(self, x: Tensor) -> Tensor:
        """``x`` in the model's dtype and memory format."""
        x = x.to(self.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def run(self, x: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """Float32 ``(embedding, output)`` of one chunk of inputs."""
        assert self.forward is not None
        emb, out = self.forward(self.cast(x))
        self.forwards += int(x.shape[0])
        emb = None if emb is None else emb.float()
        out = None if out is None else out.float()
        return emb, out

    def evaluate(self, x: Tensor, chunk: int) -> tuple[Tensor | None, Tensor | None]:
        """:meth:`run` over ``x`` in balanced chunks of at most ``chunk`` inputs."""
        step = balanced_chunk(x.shape[0], chunk)
        embs: list[Tensor] = []
        outs: list[Tensor] = []
        for s in range(0, x.shape[0], step):
            e, o = self.run(x[s : s + step])  # every chunk gives the same kinds
            if e is not None:
                embs.append(e)
            if o is not None:
                outs.append(o)
        emb = torch.cat(embs) if embs else None
        out = torch.cat(outs) if outs else None
        return emb, out

    def predict(self, x: Tensor) -> Tensor:
        """Float32 output of one chunk of inputs (a hook never cuts this forward short)."""
        assert self.forward is not None
        saved = self.forward.need_output
        self.forward.need_output = True
        try:
            _, out = self.forward(self.cast(x))
        finally:
            self.forward.need_output = saved
        assert out is not None
        self.forwards += int(x.shape[0])
        return out.float()
