"""The package's shape: no import cycles, layers only import downwards, and only the CLI
draws on the terminal (docs/architecture.md states the same rules)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "eyeedit"
CORE = {"eyeedit.imageio", "eyeedit.landmarks", "eyeedit.detection", "eyeedit.geometry", "eyeedit.regions",
        "eyeedit.viz"}
# Each layer may import itself and the layers listed after it (see docs/architecture.md).
LAYERS = ["cli", "tools", "training", "editing", "data", "model", "core"]
ALLOWED = {
    "core": {"core"},
    "model": {"model", "core"},
    "data": {"data", "core"},
    "editing": {"editing", "model", "core"},
    "training": {"training", "data", "model", "editing", "core"},
    "tools": {"tools", "training", "editing", "data", "model", "core"},
    "cli": set(LAYERS),
}
TERMINAL = ("click", "rich")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str:
    if module in CORE:
        return "core"
    if module == "eyeedit.__main__":
        return "cli"
    if module == "eyeedit":
        return "tools"  # the package's public API (``from eyeedit import Editor``)
    second = module.split(".")[1]
    return second if second in ("cli", "training", "editing", "data", "model") else "tools"


def _imports() -> dict[str, set[str]]:
    """module -> the eyeedit modules and top-level packages it imports (anywhere in the file)."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                if node.module.startswith("eyeedit"):
                    found.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        graph[_module_name(path)] = found
    modules = set(graph)
    return {m: {i for i in found if i in modules or not i.startswith("eyeedit")} for m, found in graph.items()}


GRAPH = _imports()
MODULES = set(GRAPH)


def test_no_import_cycles():
    internal = {m: {i for i in deps if i in MODULES and i != m} for m, deps in GRAPH.items()}
    visiting, done = set(), set()

    def visit(m, trail):
        if m in done:
            return
        assert m not in visiting, "import cycle: " + " -> ".join(trail + [m])
        visiting.add(m)
        for dep in sorted(internal[m]):
            # a package's __init__ importing its own submodules is not a cycle of modules
            if not dep.startswith(m + "."):
                visit(dep, trail + [m])
        visiting.discard(m)
        done.add(m)

    for module in sorted(internal):
        visit(module, [])


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) != "cli"))
def test_library_never_imports_the_terminal_ui(module):
    bad = sorted(i for i in GRAPH[module] if i.split(".")[0] in TERMINAL or i.startswith("eyeedit.cli"))
    assert not bad, f"{module} imports {bad}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_layers_import_downwards(module):
    layer = _layer(module)
    wrong = sorted(i for i in GRAPH[module] if i in MODULES and i != "eyeedit" and _layer(i) not in ALLOWED[layer])
    assert not wrong, f"{module} ({layer}) may not import {wrong}"


def test_parsing_a_command_line_loads_no_heavy_library(tmp_path):
    """Every command's options are parsed before it runs: `eyeedit --help` or a usage error must
    not wait for PyTorch, ONNX Runtime or MediaPipe, and ONNX Runtime's import writes a file into
    the temporary folder, which `serve` points at its own workspace only once it runs."""
    import os
    import subprocess
    import sys

    # the commands that run a model or photos without training import nothing heavy to parse
    light = ["main", "options", "apply", "preview", "serve", "models", "crop", "prepare", "synth", "run", "samples"]
    code = ("import sys, importlib; "
            f"[importlib.import_module('eyeedit.cli.' + m) for m in {light!r}]; "
            "print(sorted(n for n in ('torch', 'onnxruntime', 'mediapipe', 'gradio') if n in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "TMPDIR": str(tmp_path)})
    assert done.stdout.strip() == "[]" and not list(tmp_path.iterdir())
