"""The structure docs/architecture.md describes, kept so: imports only go one way, no module above
MAX_LINES and no function above MAX_FUNCTION_LINES (LONG_FUNCTIONS lists those not split yet).

Read from the source with ast (nothing is imported): every `import` anywhere in a module counts,
those inside functions too, since a lazy import is still a dependency that a circle makes hard to
follow.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("posedata", "trainer")
# The application layer: the command line and the demo drive the trainer; the library below them never does.
APPLICATION = ("posedata.cli", "posedata.commands", "posedata.demo", "posedata.__main__")
MAX_LINES = 700
# Modules that are mostly a table or a declarative list (allowed beyond MAX_LINES): none today.
TABLES: set[str] = set()
MAX_FUNCTION_LINES = 80
# Functions longer than MAX_FUNCTION_LINES (docstring included) not split yet, with their length
# today: each may not grow, and the list only shrinks (tables and declarative lists may stay).
# posedata.bodyframe was being changed by another issue when the rest were split.
LONG_FUNCTIONS: dict[str, int] = {}  # empty: every function is within MAX_FUNCTION_LINES


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of this project that `name` imports (a package's submodules resolved)."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            stem = base[: len(base) - node.level + 1] if node.level else []
            mod = ".".join(stem + ([node.module] if node.module else []))
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports(name, path, known) for name, path in mods.items()}


def external(path: Path) -> set[str]:
    """Top-level names of every absolute import in a file."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module.split(".")[0])
    return out


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle():
    g = graph()
    # a package's __init__ importing its own modules is how a package exports; it is no circle
    g = {m: {t for t in ts if not (m == t.rpartition(".")[0] and (ROOT / Path(*m.split("."))).is_dir())}
         for m, ts in g.items()}
    assert cycles(g) == []


def test_the_library_never_imports_torch_or_the_trainer():
    bad = {name: sorted(external(path) & {"torch", "torchvision", "trainer"})
           for name, path in modules().items()
           if name.startswith("posedata") and not name.startswith(APPLICATION)}
    assert {k: v for k, v in bad.items() if v} == {}


def test_the_trainer_never_imports_the_command_line():
    g = graph()
    assert {m: sorted(t for t in ts if t.startswith(APPLICATION))
            for m, ts in g.items() if m.startswith("trainer") and any(t.startswith(APPLICATION) for t in ts)} == {}


@pytest.mark.parametrize("name", sorted(modules()))
def test_module_size(name):
    if name in TABLES:
        return
    lines = len(modules()[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name}: {lines} lines, more than {MAX_LINES} (split it by concept; docs/architecture.md)"


def function_lengths() -> dict[str, int]:
    """module:qualified.name -> lines from `def` to the end of the body, of every function and method."""
    out: dict[str, int] = {}

    def visit(node: ast.AST, module: str, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                qual = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    out[f"{module}:{qual}"] = child.end_lineno - child.lineno + 1
                visit(child, module, qual + ".")
            else:
                visit(child, module, prefix)

    for name, path in modules().items():
        visit(ast.parse(path.read_text(encoding="utf-8")), name, "")
    return out


def test_no_function_above_the_limit():
    """A function a reader cannot see at once hides its steps: name them (docs/architecture.md)."""
    lengths = function_lengths()
    long = {f: n for f, n in lengths.items() if n > MAX_FUNCTION_LINES and n > LONG_FUNCTIONS.get(f, 0)}
    assert long == {}, "split these functions into named steps"
    # the allow-list only shrinks: an entry whose function is gone or now short must go
    stale = {f for f, n in LONG_FUNCTIONS.items() if lengths.get(f, 0) <= MAX_FUNCTION_LINES}
    assert stale == set(), "remove these from LONG_FUNCTIONS"


def test_the_graph_reader_sees_imports():
    """The checks above are only as good as the reader: a known edge must be in the graph."""
    g = graph()
    assert "posedata.validate" in g["posedata.fix"]
    assert "posedata.commands.common" in g["posedata.cli"]
    assert "posedata.check" in g["posedata.commands.model"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert function_lengths()["posedata.skeleton.file:parse"] > 10  # methods and functions are both seen
    assert "posedata.validate:_Validator.run" in function_lengths()
