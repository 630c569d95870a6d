"""The house rules of the layout, read from the source: no import cycles, the engine never imports the
training world or the clients (only the CLI, the demo and the benchmarks may reach across), wings stay small."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("realtime", "distill", "clients", "kernels")
MAY_REACH_ACROSS = ("realtime.cli", "realtime.demo", "realtime.bench")
MAX_LOOSE_MODULES = 15  # more than this at one folder's top asks for wings (STYLE.md)


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for p in (ROOT / pkg).rglob("*.py"):
            name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = p
    return mods


def _graph() -> dict[str, set[str]]:
    """module -> the project modules it imports anywhere in its body (function-level imports included)."""
    mods = _modules()

    def resolve(name: str) -> str:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, path in mods.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps |= {resolve(a.name) for a in node.names if a.name.split(".")[0] in PACKAGES}
            elif (
                isinstance(node, ast.ImportFrom) and node.level == 0 and node.module.split(".")[0] in PACKAGES
            ):
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    deps.add(full if full in mods else resolve(node.module))
        # importing a module runs its packages' __init__ too: edges to one's own ancestors are not cycles
        graph[name] = {d for d in deps if d and d != name and not name.startswith(d + ".")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_there_are_no_import_cycles() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_engine_never_imports_the_training_world_or_the_clients() -> None:
    reach = sorted(
        (m, d)
        for m, deps in _graph().items()
        if m.startswith("realtime") and not m.startswith(MAY_REACH_ACROSS)
        for d in deps
        if d.split(".")[0] in ("distill", "clients")
    )
    assert reach == []


def test_kernels_stand_alone() -> None:
    assert not {
        d
        for m, deps in _graph().items()
        if m.startswith("kernels")
        for d in deps
        if not d.startswith("kernels")
    }


def test_no_folder_has_too_many_loose_modules() -> None:
    crowded = {
        str(folder.relative_to(ROOT)): n
        for pkg in PACKAGES
        for folder in [ROOT / pkg, *(p for p in (ROOT / pkg).rglob("*") if p.is_dir())]
        if (n := len([p for p in folder.glob("*.py") if p.name != "__init__.py"])) > MAX_LOOSE_MODULES
    }
    assert crowded == {}
