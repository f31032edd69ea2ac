"""The layers of docs/architecture.md point one way: no module imports from a layer above it
(but for arrows listed in `KNOWN`, none today), and only the commands and the set-up layer
see a DictConfig."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "metaaug"

# top to bottom; a module's layer is that of its first path part (a file or a package)
LAYERS = (
    ("__init__", "cli", "api", "api_checks"),
    ("commands",),
    ("config",),
    ("pipeline", "fewshot", "summary"),
    ("training", "meta", "metrics", "models", "data", "io", "augment", "gan", "hardware",
     "precision", "distributed", "errors", "conf"),
)  # fmt: skip

# (importer, imported) of arrows that run up today (none; an arrow that must stay a while
# goes here with the reason, and docs/architecture.md says so)
KNOWN: set[tuple[str, str]] = set()


def _layer(module: str) -> int:
    """The layer of a dotted module name under metaaug."""
    head = module.split(".")[1] if "." in module else "__init__"
    for i, names in enumerate(LAYERS):
        if head in names:
            return i
    raise AssertionError(f"{module} is in no layer of tests/test_layers.py")


def _is_module(package: str, name: str) -> bool:
    folder = SRC.joinpath(*package.split(".")[1:])
    return (folder / f"{name}.py").is_file() or (folder / name).is_dir()


def _imports(path: Path) -> set[str]:
    """The metaaug modules `path` imports, at module level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "metaaug" or node.module.startswith("metaaug."):
                # from metaaug.config import build: the module build; from metaaug import
                # __version__: the package
                found |= {f"{node.module}.{a.name}" if _is_module(node.module, a.name)
                          else node.module for a in node.names}  # fmt: skip
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("metaaug.")}
    return found


def _arrows_up() -> set[tuple[str, str]]:
    up = set()
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("conf/"):
            continue
        mine = _layer("metaaug." + rel.removesuffix(".py").replace("/", "."))
        for imported in _imports(path):
            if _layer(imported) < mine:  # a smaller index is a higher layer
                up.add((rel, imported))
    return up


def test_no_module_imports_from_a_layer_above_it() -> None:
    up = _arrows_up()
    assert up <= KNOWN, f"new arrows up: {sorted(up - KNOWN)}"
    assert up >= KNOWN, f"gone from the code, remove from KNOWN: {sorted(KNOWN - up)}"


def test_only_the_commands_and_the_set_up_layer_read_the_config() -> None:
    readers = {
        path.relative_to(SRC).as_posix()
        for path in SRC.rglob("*.py")
        if "DictConfig" in path.read_text()
    }
    assert {p.split("/")[0] for p in readers} <= {"commands", "config"}, sorted(readers)
