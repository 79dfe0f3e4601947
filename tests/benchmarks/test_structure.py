"""The shape of ``benchmarks/``: no import cycle, plain imports, and only the public ganblocks API.

Read from the source (nothing is imported): every module's imports, wherever they stand, form the graph.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ganblocks
import ganblocks.functional as gf

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
FILES = sorted(BENCHMARKS.rglob("*.py"))
# Optional dependencies, imported where they are used so that the suite runs without them.
OPTIONAL = {"matplotlib", "matplotlib.pyplot"}
BACKEND_CONTROL = {"use_backend", "get_backend"}
# Modules and the version from ganblocks (backend control only from ganblocks.ops), functions from functional.
PUBLIC_TOP = set(ganblocks.__all__) - BACKEND_CONTROL
PUBLIC_MODULES = (
    {"ganblocks", "ganblocks.functional", "ganblocks.ops"}
    | {f"ganblocks.{n}" for n in PUBLIC_TOP}
    | {f"ganblocks.functional.{n}" for n in gf.__all__}
    | {f"ganblocks.ops.{n}" for n in BACKEND_CONTROL}
)


def module_name(path: Path) -> str:
    parts = path.relative_to(BENCHMARKS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, node: ast.AST) -> list[str]:
    """Absolute names of the modules an import statement imports (``from . import x`` gives ``pkg.x``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    if node.level == 0:
        base = node.module or ""
    else:
        package = module_name(path).split(".")
        if path.name != "__init__.py":
            package = package[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def walk_imports(tree: ast.Module) -> list[tuple[ast.AST, bool]]:
    """Every import with whether it stands at module level (not in a function, class, ``if`` or ``try``)."""
    top = {id(n) for n in tree.body}
    return [(n, id(n) in top) for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def test_no_import_cycle() -> None:
    names = {module_name(p) for p in FILES}
    graph: dict[str, set[str]] = {}
    for path in FILES:
        deps = set()
        for node, _ in walk_imports(parse(path)):
            deps |= {m for m in imported_modules(path, node) if m in names}
        graph[module_name(path)] = deps - {module_name(path)}

    def cycle_from(start: str) -> list[str]:
        stack, path_ = [(start, iter(sorted(graph[start])))], [start]
        while stack:
            _, deps = stack[-1]
            nxt = next(deps, None)
            if nxt is None:
                stack.pop()
                path_.pop()
            elif nxt == start:
                return [*path_, start]
            elif nxt not in path_:
                stack.append((nxt, iter(sorted(graph[nxt]))))
                path_.append(nxt)
        return []

    cycles = [c for c in map(cycle_from, sorted(graph)) if c]
    assert not cycles, cycles
    assert not any(
        "benchmarks.runner" in deps for name, deps in graph.items() if name != "benchmarks.__main__"
    )


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(BENCHMARKS)))
def test_plain_imports_of_the_public_api(path: Path) -> None:
    tree = parse(path)
    for node, at_top in walk_imports(tree):
        modules = imported_modules(path, node)
        if not at_top:
            assert set(modules) <= OPTIONAL, f"{path.name}:{node.lineno}: import inside a block: {modules}"
        for m in modules:
            if m.split(".")[0] != "ganblocks":
                continue
            assert "plain" not in path.parts, f"{path.name}: benchmarks/plain must not import ganblocks"
            assert m in PUBLIC_MODULES, f"{path.name}:{node.lineno}: {m} is not the public API"
    # Attribute access: ganblocks.<public name>, gf.<public function>.
    aliases = {"ganblocks": PUBLIC_TOP, "gf": set(gf.__all__)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            public = aliases[node.value.id]
            assert node.attr in public, (
                f"{path.name}:{node.lineno}: {node.value.id}.{node.attr} is not public"
            )
