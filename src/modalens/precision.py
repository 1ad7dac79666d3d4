"""One precision vocabulary for training, prediction and attribution.

Canonical names are ``fp32``, ``bf16`` and ``fp16``; the spellings users bring from Lightning or
PyTorch (``32``, ``32-true``, ``bf16-mixed``, ``16-mixed``, ``float32`` ...) are accepted and
mapped onto them. Training runs the canonical name through Lightning's mixed precision
(:func:`lightning_precision`); inference and attribution cast weights or use autocast with
:func:`torch_dtype`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .errors import SpecError

PRECISIONS = ("fp32", "bf16", "fp16")
_ALIASES = {
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
_LIGHTNING = {"fp32": "32-true", "bf16": "bf16-mixed", "fp16": "16-mixed"}
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


def lightning_precision(precision: str) -> str:
    """Lightning's ``Trainer(precision=...)`` value of a precision."""
    return _LIGHTNING[parse_precision(precision)]


def torch_dtype(precision: str) -> torch.dtype:
    """The tensor dtype of a precision (``torch.float32`` for ``fp32``)."""
    return _DTYPES[parse_precision(precision)]
