"""Thread defaults: passive OpenMP waiting and the CPUs the process may actually use."""

from __future__ import annotations

import os
from pathlib import Path

from modalens.threads import available_cpus, configure_threads


def test_available_cpus_follows_affinity_and_cgroup_quota(tmp_path: Path) -> None:
    affinity = len(os.sched_getaffinity(0))
    quota = tmp_path / "cpu.max"
    quota.write_text("max 100000\n")
    assert available_cpus(quota) == affinity
    quota.write_text("50000 100000\n")  # half a CPU: at least one thread
    assert available_cpus(quota) == 1
    quota.write_text(f"{100000 * (affinity + 3)} 100000\n")  # a quota above the affinity
    assert available_cpus(quota) == affinity
    assert available_cpus(tmp_path / "missing") == affinity


def test_configure_threads_keeps_what_the_user_set() -> None:
    env: dict[str, str] = {"OMP_NUM_THREADS": "7"}
    out = configure_threads(env)
    assert out == {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "7"}
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    out = configure_threads(env)
    assert out["OMP_WAIT_POLICY"] == "ACTIVE"
    assert out["OMP_NUM_THREADS"] == str(available_cpus())
