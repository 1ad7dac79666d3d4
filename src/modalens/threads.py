"""Thread settings that hold up on a shared machine, for the application to apply.

OpenMP (torch's CPU thread pool) reads its settings once, when torch starts it, so
:func:`configure_threads` sets them as environment defaults and must run before torch is
imported; a value the user set always wins. The ``modalens`` command calls it first thing;
importing modalens changes nothing. A script or notebook that wants the same settings calls
it itself, at the top, before importing torch (or anything that imports torch)::

    from modalens.threads import configure_threads

    configure_threads()
    import torch  # torch now uses the settings below

- ``OMP_WAIT_POLICY=PASSIVE``: idle threads sleep instead of spinning. With the default
  spin-waiting, 10 training steps of the demo U-Net took 14-43 s instead of 3.6-6 s whenever
  another process kept one of the 2 cores busy.
- ``OMP_NUM_THREADS`` = the CPUs this process may actually use (:func:`available_cpus`: its CPU
  affinity, e.g. ``taskset`` or a cgroup cpuset, and a cgroup CPU quota such as a container's
  ``--cpus``), not the machine's core count, which oversubscribes a restricted process.

:func:`threads_per_process` is each process's share when a call starts several processes on
one machine (:func:`modalens.fit`, sharded attribution); those calls apply it only while they
run (:func:`modalens.scope.scoped_process`).
"""

from __future__ import annotations

import math
import os
from collections.abc import MutableMapping
from pathlib import Path

#: cgroup v2 CPU quota file ("max 100000" or "200000 100000")
CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
#: set beside ``OMP_NUM_THREADS`` when modalens chose that value (the user did not)
DEFAULT_MARK = "MODALENS_DEFAULT_THREADS"


def available_cpus(cpu_max: Path = CPU_MAX) -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota (at least 1)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max" and float(period) > 0:
            cpus = min(cpus, math.ceil(float(quota) / float(period)))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def configure_threads(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set ``OMP_WAIT_POLICY`` and ``OMP_NUM_THREADS`` defaults (see the module docstring).

    Call it before torch is imported: OpenMP reads these variables once, when torch loads it.
    Values already set are kept; ``OMP_NUM_THREADS`` chosen here is marked
    (``MODALENS_DEFAULT_THREADS``) so that :func:`threads_per_process` may divide it.

    Args:
        environ: the environment to set (default ``os.environ``).

    Returns:
        ``OMP_WAIT_POLICY`` and ``OMP_NUM_THREADS`` as they now are.
    """
    env = os.environ if environ is None else environ
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = env[DEFAULT_MARK] = str(available_cpus())
    return {k: env[k] for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}


def threads_per_process(processes: int, environ: MutableMapping[str, str] | None = None) -> int:
    """Threads for each of ``processes`` processes sharing this machine: ``OMP_NUM_THREADS``
    when the user set it, else :func:`available_cpus` divided among the processes (at least
    1). Sets ``OMP_NUM_THREADS`` in ``environ`` (default ``os.environ``) to the result, so
    processes started from it inherit it: library calls do so inside
    :func:`modalens.scope.scoped_process`, which restores it."""
    env = os.environ if environ is None else environ
    value = env.get("OMP_NUM_THREADS")
    chosen = value is None or env.get(DEFAULT_MARK) == value
    try:
        n = max(1, available_cpus() // max(1, processes)) if chosen else max(1, int(value or 1))
    except ValueError:
        n = 1
    env["OMP_NUM_THREADS"] = str(n)
    if chosen:
        env[DEFAULT_MARK] = str(n)
    return n
