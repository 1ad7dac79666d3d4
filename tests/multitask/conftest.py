"""One torch thread for the tiny multitask models (``mtl_config`` is in tests/helpers.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Tiny models: one torch thread (the shared ``one_torch_thread`` fixture) for every test."""
