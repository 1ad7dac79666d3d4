"""docs/walkthrough-sen1floods11.md runs as written on the real Sen1Floods11 chip: each bash
block's ``modalens`` commands run in order (tests/docblocks.py's block syntax) in one temporary
folder, after the page's YAML block is saved under the name its first line gives, and every
line of the ``text`` block after a bash block must be in what its commands printed (``…`` in a
quoted line stands for any text; spaces are compared collapsed). So the numbers the page
quotes are checked here, never written twice. Skipped when ``../shared/data`` is absent."""

from __future__ import annotations

import io
import re
import shlex
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import yaml
from docblocks import BLOCK, ROOT

from modalens.cli import main

PAGE = ROOT / "docs" / "walkthrough-sen1floods11.md"
SHARED = ROOT.parent / "shared"
CHIP = SHARED / "data" / "sen1floods11-example"


def _steps(text: str) -> list[tuple[str, str]]:
    """``(lang, code)`` of the page's fenced blocks, in order."""
    return [(m[3], m[4]) for m in BLOCK.finditer(text)]


def _commands(code: str) -> list[str]:
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in code.splitlines()]
    return [line for line in lines if line.startswith("modalens ")]


def _quoted(line: str) -> re.Pattern[str]:
    parts = [re.escape(" ".join(p.split())) for p in line.split("…")]
    return re.compile(".*".join(parts))


def run_page(work: Path) -> list[tuple[str, str, str]]:
    """Run the page in ``work``: ``(commands, printed, quoted)`` per bash block."""
    out = []
    steps = _steps(PAGE.read_text())
    for i, (lang, code) in enumerate(steps):
        if lang == "yaml":
            name = code.splitlines()[0].lstrip("# ").strip()
            (work / name).write_text(code)
            assert isinstance(yaml.safe_load(code), dict)
        if lang != "bash" or not _commands(code):
            continue
        printed = io.StringIO()
        for command in _commands(code):
            argv = shlex.split(command.replace("../shared/", f"{SHARED}/"))[1:]
            with redirect_stdout(printed):
                rc = main(["-q", *argv])
            assert rc == 0, f"`{command}` exited {rc}"
        nxt = steps[i + 1] if i + 1 < len(steps) else ("", "")
        out.append(
            ("; ".join(_commands(code)), printed.getvalue(), nxt[1] if nxt[0] == "text" else "")
        )
    return out


@pytest.mark.skipif(not CHIP.is_dir(), reason=f"the Sen1Floods11 chip is not found at {CHIP}")
@pytest.mark.usefixtures("one_torch_thread")
def test_walkthrough_runs_and_prints_what_it_quotes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    results = run_page(tmp_path)
    assert len(results) >= 7, "the walkthrough lost a step"
    for commands, printed, quoted in results:
        flat = " ".join(printed.split())
        for line in quoted.splitlines():
            if line.strip():
                assert _quoted(line).search(flat), (
                    f"`{commands}` no longer prints {line.strip()!r}; it printed:\n{printed}"
                )
