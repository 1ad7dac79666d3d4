"""The fenced code blocks of the README and of the docs site, in the order a reader meets them.

The files are ``README.md``, then the pages of ``mkdocs.yml``'s ``nav`` in their order (a page's
commands may use what an earlier page's wrote), then any other page under ``docs/``. A block is
``(?:<!-- test: MODE [PREFIX] (reason) -->\\n)?```LANG\\n...```\\n``: ``MODE`` is ``skip`` or
``parse`` (see tests/test_readme_blocks.py), absent for a block that runs. ``text`` blocks are
output shown to the reader, not code, and are left out (:data:`SHOWN`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
#: languages of blocks that show output rather than code to run
SHOWN = frozenset({"text"})
BLOCK = re.compile(
    r"(?:<!-- test: (skip|parse)(?: ([a-z ]+?))? \([^)]*\) -->\n)?```(\w+)\n(.*?)```", re.S
)
#: a fence that opens a block (with or without a language)
FENCE = re.compile(r"^```(\w*)$", re.M)


@dataclass(frozen=True)
class Block:
    path: str  # relative to the repository root
    line: int
    lang: str
    code: str
    mode: str  # run, skip or parse
    prefix: str | None  # with mode parse: only commands starting with this are parsed

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.lang}"


def _nav_pages(nav: object) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [p for value in nav.values() for p in _nav_pages(value)]
    if isinstance(nav, list):
        return [p for item in nav for p in _nav_pages(item)]
    return []


def nav_pages() -> list[str]:
    """The pages of ``mkdocs.yml``'s nav, relative to ``docs/``, in nav order."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    return [p for p in _nav_pages(config.get("nav", [])) if p.endswith(".md")]


def doc_files() -> list[Path]:
    """README.md, the nav's pages, then the other pages under docs/ (sorted)."""
    in_nav = [DOCS / p for p in nav_pages()]
    rest = sorted(p for p in DOCS.rglob("*.md") if p not in in_nav)
    return [README, *in_nav, *rest]


def blocks_of(path: Path) -> list[Block]:
    """The code blocks of one file (output blocks left out)."""
    text = path.read_text()
    rel = str(path.relative_to(ROOT))
    return [
        Block(rel, text[: m.start(3)].count("\n") + 1, m[3], m[4], m[1] or "run", m[2])
        for m in BLOCK.finditer(text)
        if m[3] not in SHOWN
    ]


def all_blocks() -> list[Block]:
    """Every code block of the README and the docs, in reading order."""
    return [b for path in doc_files() for b in blocks_of(path)]


def fences_without_language(path: Path) -> list[int]:
    """Lines of opening fences that name no language (their code would escape the tests)."""
    text, out, inside = path.read_text(), [], False
    for m in FENCE.finditer(text):
        if not inside and not m[1]:
            out.append(text[: m.start()].count("\n") + 1)
        inside = not inside
    return out
