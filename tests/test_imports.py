"""The package's import structure: light commands start without torch, and no import cycles.

- ``pcdms --help``, ``pcdms pose ...`` and ``pcdms data validate`` run in a fresh interpreter without
  importing torch, diffusers, transformers, accelerate or Gradio (checked in ``sys.modules``).
- The module-level imports of the package form no cycle (read from the source), the library never imports
  the command line (``pcdms.cli``, ``pcdms.commands``), not even inside a function, so the web page and the
  command line cannot import each other; and every module imports in a fresh interpreter in dependency order.
"""

import ast
import graphlib
import json
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

from pcdms.bundled import street_examples_path
from test_data import make_csv_layout

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "pcdms"
HEAVY = ("torch", "diffusers", "transformers", "accelerate", "gradio")
COMMAND_LINE = ("pcdms.cli", "pcdms.__main__", "pcdms.commands")
GRADIO_MODULES = ("pcdms.page", "pcdms.page_parts", "pcdms.animate_page")  # the web page: need the app extra

# Runs one command line in this fresh interpreter and prints its exit status and the heavy modules imported.
PROBE = """
import json, sys
import pcdms.cli
try:
    status = pcdms.cli.main(json.loads(sys.argv[1]))
except SystemExit as exit:
    status = exit.code
print(json.dumps({"status": status, "heavy": [name for name in sys.argv[2:] if name in sys.modules]}))
"""


def run_fresh(argv: list) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps([str(arg) for arg in argv]), *HEAVY],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    *output, result = done.stdout.strip().splitlines()
    return json.loads(result) | {"output": "\n".join(output)}


def light_commands(tmp_path: Path) -> list[tuple[list, int]]:
    """Command lines that must start without torch, each with its expected exit status."""
    pose = street_examples_path() / "0086_c1s1_000670_00.json"
    data = make_csv_layout(tmp_path / "data", "fasion-resize", (176, 256), "train", (176, 256))
    return [
        (["--help"], 0),
        (["pose", "render", pose, "--out", tmp_path / "map.png"], 0),
        (["pose", "convert", pose, "--out", tmp_path / "pose.txt"], 0),
        (["pose", "extract", tmp_path / "no-such-photo.jpg", "--out", tmp_path / "poses"], 1),
        (["data", "validate", data, "--check-images"], 0),
        (["data", "validate", tmp_path / "no-dataset"], 1),
    ]


def test_light_commands_start_without_torch(tmp_path):
    outputs = {}
    for argv, status in light_commands(tmp_path):
        result = run_fresh(argv)
        assert (result["status"], result["heavy"]) == (status, []), argv
        outputs.setdefault(" ".join(map(str, argv[:2])), result["output"])
    # The commands did their work: help listed, the pose map and the converted pose written, the dataset checked.
    assert "pose" in outputs["--help"] and "generate" in outputs["--help"]
    assert (tmp_path / "map.png").stat().st_size > 0 and (tmp_path / "pose.txt").read_text().strip()
    assert "pairs: 3 (3 usable)" in outputs["data validate"]


def test_a_model_command_does_import_torch(tmp_path):
    """The probe itself sees heavy imports: a model command that gets as far as resolving its device."""
    result = run_fresh(["evaluate", "--generated", tmp_path, "--ground-truth", tmp_path, "--device", "nonsense"])
    assert result["status"] == 1 and "torch" in result["heavy"]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(name: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The pcdms modules an import statement of module ``name`` imports (``from . import x`` is module x)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in MODULES]
    base = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    for _ in range(node.level - 1):
        base = base.rpartition(".")[0]
    target = node.module if not node.level else f"{base}.{node.module}" if node.module else base
    found = [f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target for alias in node.names]
    return [module for module in found if module in MODULES]


def import_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Per module: the pcdms modules it imports when imported (``if TYPE_CHECKING:`` left out), and those
    it imports anywhere, inside functions too."""
    at_import, anywhere = {}, {}
    for name, path in MODULES.items():
        at_import[name], anywhere[name] = set(), set()

        def visit(node, top: bool, name=name) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                    continue
                if isinstance(child, ast.Import | ast.ImportFrom):
                    modules = imported_modules(name, child)
                    anywhere[name].update(modules)
                    if top:
                        at_import[name].update(modules)
                visit(child, top and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))

        visit(ast.parse(path.read_text(encoding="utf-8")), True)
    return at_import, anywhere


def test_import_graph_is_read():
    at_import, anywhere = import_graph()
    assert "pcdms.commands.generate" in at_import["pcdms.commands"]
    assert "pcdms.bundled" in at_import["pcdms.app"]
    assert "pcdms.page" in anywhere["pcdms.commands.demo"] and "pcdms.page" not in at_import["pcdms.commands.demo"]


def test_no_import_cycle_and_the_library_does_not_import_the_command_line():
    at_import, anywhere = import_graph()
    order = list(graphlib.TopologicalSorter(at_import).static_order())  # raises CycleError on a cycle
    assert set(order) == set(MODULES)
    for name, imported in anywhere.items():
        if not name.startswith(COMMAND_LINE):
            assert not [module for module in imported if module.startswith(COMMAND_LINE)], name
    # The web page is reached from the command line only, when pcdms serve runs; its handlers from the page only.
    assert {name for name, imported in anywhere.items() if "pcdms.page" in imported} == {"pcdms.commands.demo"}
    assert {name for name, imported in anywhere.items() if "pcdms.app" in imported} == {"pcdms.page"}


def test_every_module_imports_in_a_fresh_interpreter():
    at_import, _ = import_graph()
    order = [
        name
        for name in graphlib.TopologicalSorter(at_import).static_order()
        if name != "pcdms.__main__" and (name not in GRADIO_MODULES or find_spec("gradio"))
    ]
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\nprint('ok')"
    done = subprocess.run([sys.executable, "-c", script, *order], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


@pytest.mark.parametrize("module", ["pcdms.cli", "pcdms.commands", "pcdms.bundled", "pcdms.devices"])
def test_command_line_modules_are_light(module):
    script = f"import sys, {module}; print([name for name in {HEAVY!r} if name in sys.modules])"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"
