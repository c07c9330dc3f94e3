"""The library's floor plan holds: sub-packages by stage, each importing only from the stages below it, no
module importing another that imports it back (lazy imports inside functions included), no widgets in the
library, and no import circle between the app's files. Run: `python -m pytest tests/test_architecture.py`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "siamese_core"
# Lowest first: a module may import from its own stage and the stages before it, never from a later one.
STAGES = [
    ("errors", "settings", "files", "words"),
    ("config",),
    ("data",),
    ("models",),
    ("runs",),
    ("inference",),
    ("evaluation",),
    ("maps",),
    ("training",),
    ("cli", "__main__", "__init__"),
]
RANK = {name: rank for rank, names in enumerate(STAGES) for name in names}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(path: Path, root: Path, known: set) -> set:
    """The modules of `known` that `path` imports anywhere in it (at the top or inside a function)."""
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from package import module` names the module; `from module import name` the module
            candidates = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module
                          for alias in node.names]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in known:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != me:
                found.add(candidate)
    return found


def import_graph(root: Path) -> dict:
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    return {name: imported_modules(path, root, set(files)) for name, path in files.items()}


def cycles(graph: dict) -> list:
    """Every strongly connected group of two or more modules (Tarjan)."""
    index, low, stack, on_stack, groups, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_the_library_has_no_import_circle_and_nothing_imports_upward():
    graph = import_graph(CORE)
    assert cycles(graph) == []
    unknown = sorted({stage(m) for m in graph} - set(RANK))
    assert unknown == [], f"put these in STAGES: {unknown}"
    upward = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets if RANK[stage(b)] > RANK[stage(a)])
    assert upward == []


def test_the_app_has_no_import_circle_and_the_library_no_widgets():
    app_files = [ROOT / "app.py", *sorted((ROOT / "app_pages").rglob("*.py"))]
    graph = {}
    for root in (ROOT / "app_pages",):
        graph.update(import_graph(root))
    assert cycles(graph) == []
    for path in CORE.rglob("*.py"):
        assert "import streamlit" not in path.read_text() and "from streamlit" not in path.read_text(), path
    assert app_files


def test_every_stage_package_imports_without_torch():
    stages = [name for names in STAGES for name in names if (CORE / name / "__init__.py").is_file()]
    code = ("import sys\n" + "".join(f"import siamese_core.{name}\n" for name in stages)
            + "print(sorted(m for m in ('torch', 'streamlit') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
