"""The package layout keeps its shape: stages import downstream only, no cycles, small modules.

These checks read the source with :mod:`ast` (nothing is imported), so a change that would make
the folder tree lie about the pipeline fails here with the offending file and line.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "modalens"
MAX_LINES = 500
#: the longest function: its lines from ``def`` to the end, its docstring left out
MAX_FUNCTION_LINES = 80

#: the pipeline, upstream first: a stage may import the stages before it, never those after
STAGES = [
    "data",
    "models",
    "tasks",
    "training",
    "attribution",
    "validation",
    "multitask",
    "report",
]
#: top-level utility modules every stage may use; they import no stage
UTILITIES = {
    "errors",
    "evidence",
    "io",
    "precision",
    "fingerprint",
    "plotting",
    "lazy",
    "threads",
    "scope",
    "deprecation",
    "progress",
    "display",
    "options",
}
#: orchestration on top of all stages
ORCHESTRATION = {"demo", "cli", "cliargs", "commands", "__init__", "__main__"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(["modalens", *parts])] = path
    return out


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    """Absolute module name of a (possibly relative) ``from ... import``."""
    if node.level == 0:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: Path) -> list[tuple[str, list[str], int, bool]]:
    """``(imported module, names, line, inside a function)`` for every internal import."""
    tree = ast.parse(path.read_text())
    out: list[tuple[str, list[str], int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue  # static-only imports
            if isinstance(child, ast.ImportFrom):
                target = _resolve(module, path, child)
                if target.startswith("modalens"):
                    names = [a.name for a in child.names]
                    # "from . import x" may name a sub-module
                    subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
                    for t in subs or [target]:
                        out.append((t, names, child.lineno, in_function))
            elif isinstance(child, ast.Import):
                for a in child.names:
                    if a.name.startswith("modalens"):
                        out.append((a.name, [], child.lineno, in_function))
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            visit(child, inner)

    visit(tree, False)
    return out


IMPORTS = {m: _imports(m, p) for m, p in MODULES.items()}


def _where(module: str) -> str:
    return str(MODULES[module].relative_to(SRC.parents[1]))


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_modules_stay_small() -> None:
    big = {_where(m): n for m, p in MODULES.items() if (n := p.read_text().count("\n")) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines (split them by concept): {big}"


def _function_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function from its ``def`` to its last line, without its docstring."""
    total = (node.end_lineno or node.lineno) - node.lineno + 1
    first = node.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        total -= (first.end_lineno or first.lineno) - first.lineno + 1
    return total


def _long_functions(tree: ast.AST, limit: int) -> list[tuple[str, int]]:
    """``(qualified name, lines)`` of the functions (methods and nested ones included) in
    ``tree`` longer than ``limit`` lines (:func:`_function_lines`)."""
    out: list[tuple[str, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                if (n := _function_lines(child)) > limit:
                    out.append((name, n))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return out


def test_long_function_finder_counts_without_the_docstring() -> None:
    source = textwrap.dedent(
        '''
        def short():
            """One

            two."""
            a = 1
            b = 2

        class A:
            def long(self):
                a = 1
                def inner():
                    b = 2
                    c = 3
                    return b + c
                return inner
        '''
    )
    found = dict(_long_functions(ast.parse(source), 3))
    assert found == {"A.long": 7, "A.long.inner": 4}  # short: 3 lines without its docstring


def test_functions_stay_short() -> None:
    long = [
        f"{_where(m)}:{name}:{n}"
        for m, path in MODULES.items()
        for name, n in _long_functions(ast.parse(path.read_text()), MAX_FUNCTION_LINES)
    ]
    assert not long, (
        f"functions over {MAX_FUNCTION_LINES} lines without their docstring (split them into "
        "helpers with one job each): " + "; ".join(long)
    )


def test_no_import_cycles() -> None:
    graph = {
        m: sorted({t for t, _, _, inside in IMPORTS[m] if not inside and t in MODULES and t != m})
        for m in MODULES
    }
    # a package's __init__ re-exports its children: an edge child -> package is a cycle only
    # when the package also imports the child, which every face does; skip child -> own parent
    for m, targets in graph.items():
        graph[m] = [t for t in targets if not m.startswith(t + ".")]
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in graph[m]:
            if state.get(t) == 1:
                return stack[stack.index(t) :] + [t]
            if t not in state and (cycle := dfs(t)):
                return cycle
        state[m] = 2
        stack.pop()
        return None

    for m in graph:
        if m not in state and (cycle := dfs(m)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def test_no_package_imports_inside_functions() -> None:
    # the command line imports each command's stage when the command runs, so that
    # `modalens --help` does not load torch; nothing else hides an import in a function
    hidden = [
        f"{_where(m)}:{line} imports {t}"
        for m, imports in IMPORTS.items()
        if m not in ("modalens.cli", "modalens.cliargs", "modalens.commands")
        for t, _, line, inside in imports
        if inside
    ]
    assert not hidden, "imports inside functions (move them to module level): " + "; ".join(hidden)


def test_no_private_names_across_modules() -> None:
    leaks = [
        f"{_where(m)}:{line} takes {', '.join(n for n in names if n.startswith('_'))} from {t}"
        for m, imports in IMPORTS.items()
        for t, names, line, _ in imports
        if any(n.startswith("_") and not n.startswith("__") for n in names)
    ]
    assert not leaks, "private names used across modules: " + "; ".join(leaks)


def test_stages_import_only_upstream() -> None:
    wrong = []
    for m, imports in IMPORTS.items():
        stage = _stage(m)
        if stage in ORCHESTRATION:
            continue
        for t, _, line, _ in imports:
            other = _stage(t)
            if other == stage or other in UTILITIES or t == "modalens":
                if t == "modalens" and m != "modalens":
                    wrong.append(f"{_where(m)}:{line} imports the top-level package")
                continue
            if stage in UTILITIES:
                wrong.append(f"{_where(m)}:{line} (a utility) imports the stage {other}")
            elif other in ORCHESTRATION:
                wrong.append(f"{_where(m)}:{line} imports {t}")
            elif STAGES.index(other) > STAGES.index(stage):
                wrong.append(f"{_where(m)}:{line}: {stage} imports the later stage {other}")
    assert not wrong, "imports against the pipeline: " + "; ".join(wrong)


def test_every_stage_is_a_package_with_a_public_face() -> None:
    for stage in STAGES:
        face = SRC / stage / "__init__.py"
        assert face.exists(), f"{stage}/ has no __init__.py"
        tree = ast.parse(face.read_text())
        doc = ast.get_docstring(tree)
        assert doc and "TODO" not in doc, f"{stage}/__init__.py needs a docstring"
        names = [
            n
            for n in tree.body
            if isinstance(n, ast.Assign)
            and any(getattr(t, "id", "") == "__all__" for t in n.targets)
        ]
        assert names, f"{stage}/__init__.py defines no __all__"


def test_every_module_has_a_docstring() -> None:
    missing = [
        _where(m)
        for m, p in MODULES.items()
        if not (doc := ast.get_docstring(ast.parse(p.read_text()))) or doc.startswith("TODO")
    ]
    assert not missing, f"modules without a real docstring: {missing}"
