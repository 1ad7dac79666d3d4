"""The README and the docs do not drift from the code: their imports resolve, their commands
exist, the README's commands table lists every command (with a Python name that exists) and
stays under 300 lines, every page is in the site's nav, and docs/architecture.md names every
package and module."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re

import pytest
from docblocks import DOCS, ROOT, all_blocks, doc_files, nav_pages

from modalens.cli import build_parser

README = (ROOT / "README.md").read_text()
ARCHITECTURE = (DOCS / "architecture.md").read_text()
SRC = ROOT / "src" / "modalens"
#: the README's length limit: what it is, quick start, tour, commands, API, links
README_LINES = 300


def _import_lines() -> list[str]:
    lines = []
    for block in all_blocks():
        if block.lang != "python":
            continue
        tree = ast.parse(block.code)
        for node in tree.body:
            if isinstance(node, ast.ImportFrom | ast.Import):
                lines.append(ast.unparse(node))
    return sorted(set(lines))


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
    for block in all_blocks():
        if block.lang != "bash":
            continue
        for line in block.code.splitlines():
            for part in re.split(r"&&|\|", line):
                words = part.split()
                if len(words) >= 2 and words[0] == "modalens":
                    sub = [w for w in words[1:3] if not w.startswith("-")]
                    found.add(tuple(sub))
    return found


def _verbs() -> set[str]:
    """Every command of the CLI: ``fit``, ``data check``, ``mtl explain``, ..."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")  # noqa: SLF001
    verbs = set()
    for name, child in sub.choices.items():
        nested = [a for a in child._actions if a.dest.endswith("_command")]  # noqa: SLF001
        verbs |= {f"{name} {n}" for n in nested[0].choices} if nested else {name}
    return verbs


def _commands_table() -> list[tuple[str, str]]:
    """(command, Python) of each row of the README's commands table."""
    section = README.split("## Commands", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`modalens "):
            rows.append((cells[0].strip("`"), cells[2]))
    return rows


def test_readme_is_short() -> None:
    n = len(README.splitlines())
    assert n <= README_LINES, f"README.md has {n} lines; move reference text into docs/"


def test_readme_commands_table_lists_every_command_once() -> None:
    verbs = _verbs()
    listed = []
    for command, _ in _commands_table():
        words = command.split()[1:]
        verb = " ".join(words[:2]) if " ".join(words[:2]) in verbs else words[0]
        assert verb in verbs, f"the commands table lists `{command}`, which does not exist"
        listed.append(verb)
    assert len(listed) == len(set(listed)), f"a command is listed twice: {sorted(listed)}"
    assert set(listed) == verbs, f"missing from the commands table: {sorted(verbs - set(listed))}"


def test_readme_commands_table_python_names_exist() -> None:
    for command, python in _commands_table():
        names = re.findall(r"`(modalens(?:\.\w+)+)`", python)
        assert names, f"the row of `{command}` names no Python function"
        for name in names:
            module, _, attr = name.rpartition(".")
            assert hasattr(importlib.import_module(module), attr), f"{command}: {name} is absent"


def test_every_page_is_in_the_nav() -> None:
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert pages == set(nav_pages()), f"pages not in mkdocs.yml's nav: {pages - set(nav_pages())}"
    assert doc_files()[0].name == "README.md"


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


def test_architecture_doc_names_every_package() -> None:
    section = ARCHITECTURE.split("## Packages", 1)[1].split("\n## ", 1)[0]
    for package in sorted(p.name for p in SRC.iterdir() if (p / "__init__.py").exists()):
        assert f"{package}/" in section, f"docs/architecture.md's package tree omits {package}/"
