"""The package's import graph: no cycle, and the engine imports no track.

Every ``digitlab/**/*.py`` is parsed with :mod:`ast`; an edge goes from a module
to each digitlab module it imports, at module level or inside a function
(``import a.b``, ``from a import b`` where ``a.b`` is a module, relative imports,
``importlib.import_module("a.b")`` with a literal name). A package's
``__init__`` that imports its submodules gives edges from the package to them.
The implicit import of a module's parent package (Python runs
``digitlab/engine/__init__.py`` before ``digitlab/engine/fit.py``) is not an
edge: the parent is registered in ``sys.modules`` before its ``__init__`` runs,
and counting it would make every package that re-exports its submodules a cycle.
An explicit ``from digitlab.engine import X`` inside ``digitlab/engine/`` is an
edge to the package, so that real cycle is caught.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from digitlab.paths import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "digitlab"
TRACKS = ("digitlab.minimnist", "digitlab.mnist", "digitlab.noisy", "digitlab.generator",
          "digitlab.web", "digitlab.pipeline")


def module_names() -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package ``__init__``) for every module of the package."""
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        names[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return names


def imports_of(path: Path, name: str, is_package: bool, modules) -> set[str]:
    """The digitlab modules ``path`` imports anywhere in its code."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.add(node.args[0].value)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imports_of(path, name, is_package, modules)
            for name, (path, is_package) in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_hand_made_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_function_level_relative_and_by_string_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("from . import paths\n"
                      "def f():\n    from digitlab.engine import fit\n"
                      "    import importlib\n"
                      "    importlib.import_module('digitlab.mnist.networks')\n")
    modules = module_names()
    assert imports_of(source, "digitlab.cli", False, modules) == {
        "digitlab", "digitlab.paths", "digitlab.engine", "digitlab.engine.fit",
        "digitlab.mnist.networks"}


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert {"digitlab.engine", "digitlab.engine.fit", "digitlab.cli"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_engine_imports_no_track():
    offending = [(name, target) for name, targets in import_graph().items()
                 if name.startswith("digitlab.engine") for target in sorted(targets)
                 if target.startswith(TRACKS)]
    assert offending == []


def test_importing_the_engine_loads_no_track_and_registers_no_architecture():
    code = ("import sys, digitlab.engine as e, digitlab.engine.networks as n\n"
            "print(sorted(m for m in sys.modules if m.startswith(('digitlab.minimnist', "
            "'digitlab.mnist', 'digitlab.noisy', 'digitlab.web', 'digitlab.generator', "
            "'digitlab.pipeline'))), sorted(n.architectures()))")
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "[] []"
