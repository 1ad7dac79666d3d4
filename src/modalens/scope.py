"""Library calls leave the process as they found it.

modalens changes no process-wide state for good: importing it sets nothing, and a call that must
change something while it runs (:func:`modalens.fit`: Lightning seeds the random generators,
turns on deterministic algorithms and sets ``PL_GLOBAL_SEED`` and ``CUBLAS_WORKSPACE_CONFIG``;
several CPU processes get their share of the cores; sharded attribution does the same) runs
inside :func:`scoped_process`, which puts everything back when the call returns or raises:

- the environment (:func:`restored_environ`), except the variables of a distributed launch
  (:data:`DISTRIBUTED_VARIABLES`): a process that joined a process group stays in it, and a
  later sharded call in the same script joins it again instead of starting new processes;
- torch's thread count, deterministic-algorithm and cuDNN flags and the random generators of
  torch (CPU; CUDA where it was started before the call), NumPy and :mod:`random`
  (:func:`restored_torch`);
- the warning filters (:func:`warnings.catch_warnings`).

Process-wide settings are the application's: the ``modalens`` command sets the thread
defaults of :func:`modalens.threads.configure_threads` before torch is imported, which a
script or notebook may call itself.
"""

from __future__ import annotations

import os
import random
import warnings
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

#: variables a distributed launch (Lightning's launchers, ``torchrun``) sets for the rest of the
#: process; :func:`restored_environ` keeps what the call left in them
DISTRIBUTED_VARIABLES = (
    "MASTER_ADDR",
    "MASTER_PORT",
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "NODE_RANK",
    "GROUP_RANK",
)


@contextmanager
def restored_environ(keep: Collection[str] = DISTRIBUTED_VARIABLES) -> Iterator[None]:
    """Within: ``os.environ`` may change; after: every variable but ``keep`` is as before
    (added ones removed, changed or removed ones put back)."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        for name in [n for n in os.environ if n not in saved and n not in keep]:
            del os.environ[name]
        for name, value in saved.items():
            if name not in keep and os.environ.get(name) != value:
                os.environ[name] = value


def _rng_states() -> dict[str, Any]:
    """The states of the global random generators (CUDA's only where CUDA is started)."""
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states:
        torch.cuda.set_rng_state_all(states["cuda"])


@contextmanager
def restored_torch() -> Iterator[None]:
    """Within: torch's global settings may change; after: its thread count, deterministic
    algorithms (and their warn-only mode), cuDNN's ``benchmark`` and ``deterministic`` flags and
    the global random generators (:mod:`random`, NumPy, torch) are as before."""
    cudnn = torch.backends.cudnn
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    flags = (cudnn.benchmark, cudnn.deterministic)
    rng = _rng_states()
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        cudnn.benchmark, cudnn.deterministic = flags
        _set_rng_states(rng)


@contextmanager
def scoped_process() -> Iterator[None]:
    """Within: a library call may change the environment, torch's global settings and the
    warning filters; after (returned or raised): all are as before (see the module docstring)."""
    with warnings.catch_warnings(), restored_environ(), restored_torch():
        yield
