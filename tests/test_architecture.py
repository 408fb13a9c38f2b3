"""The package's shape, read from its source with ``ast``: stages import only earlier stages, no import cycles,
no module over 450 lines and no function over 80, each stage exports at most 25 names (those the notebooks import
among them), and ``import deepfake_lib`` stays light."""

from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "deepfake_lib"
# Data flows one way: a module may import its own stage and earlier ones, never a later one.
STAGES = (
    "core",
    "data",
    "prepare",
    "models",
    "evaluation",
    "training",
    "explain",
    "report",
    "predict",
    "deploy",
    "ui",
    "demo",
    "pipeline",
    "bench",
    "cli",
)
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80
# A stage exports the names notebooks and users call; everything else is imported from its module.
MAX_PUBLIC_NAMES = 25
NOTEBOOKS = PACKAGE.parent / "notebooks"
# Functions (or modules) allowed over the limits while they wait to be split: the set may only shrink (a ratchet),
# and it is empty now; anything new must fit the limits.
NOT_YET_SPLIT: set[str] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _not_library_imports(tree: ast.Module) -> set[int]:
    """ids of import nodes that the library never runs: under ``if TYPE_CHECKING:`` (annotations only) and under
    ``if __name__ == "__main__":`` (a ``python -m`` entry point handing over to its command line)."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and any(key in ast.unparse(node.test) for key in ("TYPE_CHECKING", "__main__")):
            ids |= {id(n) for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))}
    return ids


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports at run time (top level and inside functions)."""
    tree = ast.parse(path.read_text())
    skip = _not_library_imports(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{a.name}" for a in node.names]
        for target in targets:
            # the deepest package module the target names (``a.b.func`` -> ``a.b``)
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target != "deepfake_lib":
                found.add(target)
    return found


def stage_of(name: str) -> int | None:
    parts = name.split(".")
    if len(parts) < 2:
        return None  # the root package: constants only, importable from anywhere
    if parts[-1] == "__main__":
        return STAGES.index("cli")  # ``python -m deepfake_lib.predict``: an entry point into the command line
    return STAGES.index(parts[1])


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_module_belongs_to_a_known_stage() -> None:
    unknown = [name for name in modules() if name != "deepfake_lib" and name.split(".")[1] not in STAGES]
    assert unknown == [], f"modules outside the stages {STAGES}: {unknown}"


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_no_stage_imports_a_later_stage() -> None:
    upward = [
        f"{name} ({STAGES[stage_of(name)]}) imports {dep} ({STAGES[stage_of(dep)]})"
        for name, deps in import_graph().items()
        for dep in sorted(deps)
        if stage_of(name) is not None and stage_of(dep) is not None and stage_of(dep) > stage_of(name)
    ]
    assert upward == []


def test_modules_and_functions_stay_small() -> None:
    too_long = []
    for name, path in modules().items():
        text = path.read_text()
        if (n := len(text.splitlines())) > MAX_MODULE_LINES and name not in NOT_YET_SPLIT:
            too_long.append(f"module {name}: {n} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES and f"{name}.{node.name}" not in NOT_YET_SPLIT:
                    too_long.append(f"function {name}.{node.name}: {length} lines")
    assert too_long == []


NOTEBOOK_NAME = re.compile(r"^0\d_[a-z]")  # "03_evaluate", "04_finetune.ipynb"


def notebook_defaults(tree: ast.AST) -> list[str]:
    """The parameters whose default value is a notebook's name: a library default names what it is, not a notebook."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            positional = args.posonlyargs + args.args
            pairs = list(zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True))
            pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None]
            found += [f"{node.name}({a.arg}={d.value!r})" for a, d in pairs
                      if isinstance(d, ast.Constant) and isinstance(d.value, str) and NOTEBOOK_NAME.match(d.value)]  # fmt: skip
    return found


def test_no_library_default_names_a_notebook() -> None:
    found = [f"{name}: {f}" for name, path in modules().items() for f in notebook_defaults(ast.parse(path.read_text()))]
    assert found == []
    assert notebook_defaults(ast.parse("def f(a, b='03_evaluate', *, c='x'): pass")) == ["f(b='03_evaluate')"]


def test_checker_sees_a_cycle_and_an_upward_import() -> None:
    """The graph helpers themselves: a two-module cycle is found, and a core module importing cli is upward."""
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert stage_of("deepfake_lib.cli.runner") > stage_of("deepfake_lib.core.runs")
    tree_imports = imports_of(
        "deepfake_lib.core.files", PACKAGE / "core" / "files.py", set(modules()) | {"deepfake_lib.cli.runner"}
    )
    assert all(stage_of(dep) <= stage_of("deepfake_lib.core.files") for dep in tree_imports)


@pytest.mark.parametrize("package", sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")))
def test_public_names_of_each_stage_resolve(package: str) -> None:
    """Each stage's ``__init__`` lists its public surface in ``__all__``, and every name there resolves."""
    module = importlib.import_module(f"deepfake_lib.{package}")
    public = getattr(module, "__all__", None)
    assert public, f"deepfake_lib.{package} has no __all__"
    missing = [name for name in public if getattr(module, name, None) is None]
    assert missing == []
    assert sorted(set(public)) == sorted(public)


def test_importing_the_package_and_its_stages_does_not_import_torch() -> None:
    """``import deepfake_lib`` and the stage packages are light: their public names load on first use."""
    stages = ", ".join(f"deepfake_lib.{p.parent.name}" for p in sorted(PACKAGE.glob("*/__init__.py")))
    code = f"import sys, deepfake_lib, {stages}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("package", sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")))
def test_each_stage_exports_at_most_max_public_names(package: str) -> None:
    """A curated surface: the tens of names notebooks and users call, not every name of every module."""
    public = importlib.import_module(f"deepfake_lib.{package}").__all__
    assert len(public) <= MAX_PUBLIC_NAMES, f"deepfake_lib.{package} exports {len(public)} names"


def notebook_stage_imports() -> list[tuple[str, str, str]]:
    """``(notebook, stage, name)`` for every ``from deepfake_lib.<stage> import <name>`` in the notebooks' code cells."""
    found = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
            for node in ast.walk(ast.parse(code)):
                if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    parts = node.module.split(".")
                    if len(parts) == 2 and parts[0] == "deepfake_lib":
                        found += [(path.name, parts[1], alias.name) for alias in node.names]
    return found


def test_notebooks_import_public_names_or_submodules_of_a_stage() -> None:
    """``from deepfake_lib.training import x`` in a notebook names a public name of training or one of its modules."""
    imports = notebook_stage_imports()
    assert imports, "the notebooks import from the stages"
    wrong = []
    for notebook, stage, name in imports:
        public = importlib.import_module(f"deepfake_lib.{stage}").__all__
        submodule = (PACKAGE / stage / f"{name}.py").is_file() or (PACKAGE / stage / name / "__init__.py").is_file()
        if name not in public and not submodule:
            wrong.append(f"{notebook}: from deepfake_lib.{stage} import {name}")
    assert wrong == []
