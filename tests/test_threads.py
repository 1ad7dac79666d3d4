"""Thread defaults: passive OpenMP waiting and the CPUs the process may actually use, set by
the command (before torch loads) and never by importing modalens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from modalens.threads import DEFAULT_MARK, available_cpus, configure_threads

SRC = Path(__file__).resolve().parents[1] / "src"


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


def _fresh_env(**extra: str) -> dict[str, str]:
    """This environment as a fresh shell has it (no thread variables), this tree's source."""
    drop = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", DEFAULT_MARK)
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, "PYTHONPATH": str(SRC), **extra}


def _python(code: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


def test_importing_modalens_changes_no_environment_variable() -> None:
    code = (
        "import os; e = dict(os.environ); import modalens\n"
        "print(sorted(set(os.environ.items()) ^ set(e.items())))"
    )
    assert _python(code, _fresh_env()) == "[]"


#: runs ``modalens attribute --help`` (a command that imports torch) in-process with
#: available_cpus() = 1, then prints the variables and torch's thread count
COMMAND = """
import os
from modalens import cli, threads
threads.available_cpus = lambda *a: 1
try:
    cli.main(["attribute", "--help"])
except SystemExit:
    pass
import torch
print(os.environ["OMP_WAIT_POLICY"], os.environ["OMP_NUM_THREADS"], torch.get_num_threads())
"""


def test_the_command_sets_thread_defaults_before_torch_loads() -> None:
    # torch uses 1 thread: OMP_NUM_THREADS was set before torch loaded (its default is the cores)
    assert _python(COMMAND, _fresh_env()) == "PASSIVE 1 1"
    assert _python(COMMAND, _fresh_env(OMP_WAIT_POLICY="ACTIVE")) == "ACTIVE 1 1"
    assert _python(COMMAND, _fresh_env(OMP_NUM_THREADS="2")) == "PASSIVE 2 2"
