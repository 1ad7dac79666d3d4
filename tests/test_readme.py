"""The README does not drift from the code: its imports resolve, its commands exist, its
architecture section names every package, and docs/architecture.md names every module."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from pathlib import Path

import pytest

from modalens.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text()
SRC = ROOT / "src" / "modalens"


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def _import_lines() -> list[str]:
    lines = []
    for block in _blocks(README, "python") + _blocks(ARCHITECTURE, "python"):
        tree = ast.parse(block)
        for node in tree.body:
            if isinstance(node, ast.ImportFrom | ast.Import):
                lines.append(ast.unparse(node))
    return lines


@pytest.mark.parametrize("line", _import_lines())
def test_readme_imports_resolve(line: str) -> None:
    node = ast.parse(line).body[0]
    if isinstance(node, ast.ImportFrom):
        module = importlib.import_module(node.module or "")
        for alias in node.names:
            assert hasattr(module, alias.name) or importlib.util.find_spec(
                f"{node.module}.{alias.name}"
            ), f"{line}: {node.module} has no {alias.name}"
    else:
        for alias in node.names:
            importlib.import_module(alias.name)


def _commands() -> set[tuple[str, ...]]:
    found = set()
    for block in _blocks(README, "bash"):
        for line in block.splitlines():
            for part in re.split(r"&&|\|", line):
                words = part.split()
                if len(words) >= 2 and words[0] == "modalens":
                    sub = [w for w in words[1:3] if not w.startswith("-")]
                    found.add(tuple(sub))
    return found


def test_readme_commands_exist() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")  # noqa: SLF001
    commands = _commands()
    assert commands, "the README shows no modalens command"
    for words in commands:
        assert words[0] in sub.choices, f"README uses `modalens {words[0]}`, which does not exist"
        child = sub.choices[words[0]]
        nested = [a for a in child._actions if a.dest.endswith("_command")]  # noqa: SLF001
        if nested and len(words) > 1:
            assert words[1] in nested[0].choices, f"`modalens {' '.join(words)}` does not exist"


def _modules() -> list[str]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if rel.name == "__init__.py":
            continue
        out.append(str(rel.with_suffix("")).replace("\\", "/"))
    return out


def test_architecture_doc_names_every_module() -> None:
    missing = [m for m in _modules() if f"{m}.py" not in ARCHITECTURE]
    assert not missing, f"docs/architecture.md does not describe: {missing}"
    named = set(re.findall(r"`([a-z_/]+)\.py`", ARCHITECTURE))
    known = set(_modules()) | {
        str(p.parent.relative_to(SRC)) + "/__init__" for p in SRC.rglob("__init__.py")
    }
    stale = sorted(n for n in named if "/" in n and not n.startswith("tests/") and n not in known)
    assert not stale, f"docs/architecture.md names modules that do not exist: {stale}"


def test_readme_architecture_names_every_stage() -> None:
    section = README.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    for package in sorted(p.name for p in SRC.iterdir() if (p / "__init__.py").exists()):
        assert f"{package}/" in section, f"the README's architecture section omits {package}/"
