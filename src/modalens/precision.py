"""One precision vocabulary for training, prediction and attribution.

Canonical names are ``fp32``, ``bf16``, ``fp16`` and ``auto``; the spellings users bring from
Lightning or PyTorch (``32``, ``32-true``, ``bf16-mixed``, ``16-mixed``, ``float32`` ...) are
accepted and mapped onto them. Training runs the canonical name through Lightning's mixed precision
(:func:`lightning_precision`); inference and attribution cast weights or use autocast with
:func:`torch_dtype`.

``auto`` means bf16 where the hardware computes it natively (:func:`native_bf16`: CPUs with
``avx512_bf16`` or ``amx_bf16``, CUDA devices for which ``torch.cuda.is_bf16_supported()``),
else fp32. Training resolves it once with :func:`resolve_auto` (``bf16-mixed`` or fp32);
attribution keeps ``auto`` and re-evaluates in fp32 what bf16 cannot resolve
(:mod:`modalens.attribution.autoprec`). The environment variable ``MODALENS_NATIVE_BF16``
(``1``/``0``) overrides the detection, e.g. to test the bf16 path on any CPU.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Literal

import torch

from .errors import SpecError

PRECISIONS = ("fp32", "bf16", "fp16", "auto")
#: the environment variable overriding :func:`native_bf16` (``1`` or ``0``)
NATIVE_BF16_ENV = "MODALENS_NATIVE_BF16"
#: CPU flags (``/proc/cpuinfo``) of native bf16 arithmetic
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
_ALIASES = {
    "auto": "auto",
    "fp32": "fp32",
    "32": "fp32",
    "32-true": "fp32",
    "float32": "fp32",
    "bf16": "bf16",
    "bf16-mixed": "bf16",
    "bfloat16": "bf16",
    "fp16": "fp16",
    "16": "fp16",
    "16-mixed": "fp16",
    "float16": "fp16",
}
#: Lightning's ``Trainer(precision=...)`` values of ours
LightningPrecision = Literal["32-true", "bf16-mixed", "16-mixed"]
_LIGHTNING: dict[str, LightningPrecision] = {
    "fp32": "32-true",
    "bf16": "bf16-mixed",
    "fp16": "16-mixed",
}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def parse_precision(
    value: object, where: str = "precision", allowed: Sequence[str] = PRECISIONS
) -> str:
    """The canonical name of a precision spelling.

    Args:
        value: e.g. ``32``, ``"fp32"``, ``"bf16-mixed"``.
        where: the key or flag named in the error message.
        allowed: canonical names accepted here (attribution takes ``fp32`` and ``bf16``).

    Raises:
        SpecError: an unknown spelling or one not in ``allowed``.
    """
    name = _ALIASES.get(str(value).strip().lower())
    if name is None or name not in allowed:
        raise SpecError(f"unknown precision {value!r}", where, f"use {' or '.join(allowed)}")
    return name


def lightning_precision(precision: str, device: str | torch.device = "cpu") -> LightningPrecision:
    """Lightning's ``Trainer(precision=...)`` value of a precision (``auto`` resolved for
    ``device`` with :func:`resolve_auto`)."""
    return _LIGHTNING[resolve_auto(precision, device)]


def torch_dtype(precision: str, device: str | torch.device = "cpu") -> torch.dtype:
    """The tensor dtype of a precision (``torch.float32`` for ``fp32``; ``auto`` resolved for
    ``device``)."""
    return _DTYPES[resolve_auto(precision, device)]


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bf16(device: str | torch.device = "cpu") -> bool:
    """Whether ``device`` computes bf16 natively (and bf16 is therefore fast there).

    CPU: ``avx512_bf16`` or ``amx_bf16`` among the CPU flags, or PyTorch's CPU capability
    ``AMX``; CUDA: ``torch.cuda.is_bf16_supported()``; other devices: False. The
    environment variable ``MODALENS_NATIVE_BF16`` (``1``/``0``) overrides the answer.
    """
    env = os.environ.get(NATIVE_BF16_ENV, "").strip().lower()
    if env in _TRUE:
        return True
    if env in _FALSE:
        return False
    kind = torch.device(device).type
    if kind == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if kind != "cpu":
        return False
    if any(flag in cpu_flags() for flag in BF16_CPU_FLAGS):
        return True
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")()
    return "AMX" in str(capability).upper()


def resolve_auto(precision: str, device: str | torch.device = "cpu") -> str:
    """The canonical name of ``precision`` with ``auto`` resolved: ``bf16`` where
    :func:`native_bf16` (``device``), else ``fp32``.

    Raises:
        SpecError: an unknown spelling.
    """
    name = parse_precision(precision)
    if name != "auto":
        return name
    return "bf16" if native_bf16(device) else "fp32"
