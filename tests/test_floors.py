"""The house's floors (README, "Architecture"): what each part may import, checked on the source itself.

* The serving runtime floor runs without torch and without the export tool: a fresh interpreter in which
  ``torch`` and ``paee_export`` cannot be imported imports every module of ``paee.runtime`` and
  ``paee.data``, every Triton python model, and the serving clients.
* No import cycle, between modules or between the parts (data, runtime, model, ..., export, bench), and no
  import from a higher floor: the import graph is read from every file's ``import`` statements (module
  level and inside functions alike), so it is the graph a reader sees.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Source folder -> the import name it is installed as.
PACKAGES = {"paee": ROOT / "paee", "paee_export": ROOT / "export", "paee_bench": ROOT / "benchmarks" / "paee_bench"}
#: The parts of the house, by import-name prefix (longest match wins), and their floor.
PARTS = {
    "paee": ("version", 0),  # paee/__init__.py holds the version only
    "paee.errors": ("errors", 0),
    "paee.data": ("data", 1),
    "paee.runtime": ("runtime", 2),
    "triton_repo": ("triton models", 2),
    "paee.model": ("model", 3),
    "paee.checkpoint": ("checkpoint", 3),
    "paee.training": ("training", 3),
    "paee.inference": ("inference", 3),
    "paee.evaluation": ("evaluation", 3),
    "paee.serving": ("serving", 4),
    "paee.cli": ("cli", 4),
    "paee_export": ("export", 4),
    "paee_bench": ("bench", 4),
}
#: What the Triton python models may import of the package: the data layer and the runtime floor.
TRITON_ALLOWED = {"errors", "data", "runtime"}


def _source_modules() -> dict[str, Path]:
    """Import name -> file of every module of the three packages and every Triton python model."""
    modules: dict[str, Path] = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    for path in (ROOT / "triton_repo").glob("*/1/model.py"):
        modules[f"triton_repo.{path.parts[-3]}"] = path
    return modules


def _imports(path: Path, known: set[str]) -> set[str]:
    """The package's modules a file imports (``from a.b import c`` counts a.b.c when that is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            # the deepest module of the package the name reaches
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _source_modules()
    known = set(modules)
    return {name: _imports(path, known) - {name} for name, path in modules.items()}


def _part(module: str) -> tuple[str, int]:
    prefix = max((p for p in PARTS if module == p or module.startswith(p + ".")), key=len)
    return PARTS[prefix]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan), i.e. the import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_no_import_cycle_between_modules():
    graph = _graph()
    # a package's __init__ is imported with any of its modules anyway: leave its re-exports out
    graph = {m: {t for t in targets if not m.startswith(t + ".")} for m, targets in graph.items()}
    assert _cycles(graph) == []


def test_no_import_cycle_between_parts_and_no_import_from_a_higher_floor():
    parts: dict[str, set[str]] = defaultdict(set)
    upward = []
    for module, targets in _graph().items():
        part, floor = _part(module)
        for target in targets:
            target_part, target_floor = _part(target)
            if target_part != part:
                parts[part].add(target_part)
            if target_floor > floor:
                upward.append(f"{module} (floor {floor}) imports {target} (floor {target_floor})")
    assert upward == []
    assert _cycles(dict(parts)) == []


def test_triton_python_models_import_only_the_data_and_runtime_floors():
    graph = _graph()
    for model in (m for m in graph if m.startswith("triton_repo.")):
        assert {_part(t)[0] for t in graph[model]} <= TRITON_ALLOWED, model
    assert len([m for m in graph if m.startswith("triton_repo.")]) == 4


def test_runtime_and_data_floors_import_without_torch_and_the_export_tool(tmp_path):
    """A fresh interpreter where torch and paee_export cannot be imported imports every module of
    paee.runtime and paee.data, every Triton python model (with a stand-in for Triton's pb_utils, which
    only Triton provides), and the serving clients."""
    stub = tmp_path / "triton_python_backend_utils.py"
    stub.write_text("def triton_string_to_numpy(s):\n    return object\n")
    models = [str(p) for p in sorted((ROOT / "triton_repo").glob("*/1/model.py"))]
    script = textwrap.dedent(f"""
        import importlib, importlib.abc, importlib.util, pkgutil, sys

        class Blocked(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] in ("torch", "paee_export"):
                    raise ImportError(name + " is made unimportable by the test")
                return None

        sys.meta_path.insert(0, Blocked())
        sys.path.insert(0, {str(tmp_path)!r})
        import paee.data, paee.runtime
        names = ["paee.errors"]
        for package in (paee.data, paee.runtime):
            names += [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
        names += ["paee.serving", "paee.serving.client", "paee.serving.server", "paee.serving.loadtest",
                  "paee.cli.serve", "paee.cli.client"]
        for name in names:
            importlib.import_module(name)
        for path in {models!r}:
            spec = importlib.util.spec_from_file_location("model_" + str(abs(hash(path))), path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            assert hasattr(module, "TritonPythonModel"), path
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "paee_export"))
        print(len(names), "modules;", "LOADED " + ",".join(loaded) if loaded else "CLEAN")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("CLEAN"), result.stdout
    assert int(result.stdout.split()[0]) >= 15  # every runtime and data module was imported


def test_the_readme_shows_the_contract_as_it_is():
    from paee.runtime.contract import markdown_table

    assert markdown_table() in (ROOT / "README.md").read_text(encoding="utf-8")
