"""The direction of the layers: the core never reaches up into the commands, no package imports one that imports it
back (so the packages stack in floors), and exit codes have one home."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import simrec_cli

PACKAGE = Path(simrec_cli.__file__).parent
FRONT = {"cli.py", "console.py", "__main__.py"}  # the command line itself, above the commands


def _core_modules() -> list[Path]:
    return [
        path
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] != "commands" and path.name not in FRONT
    ]


def _imported_modules(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_core_imports_neither_commands_nor_typer() -> None:
    offenders = []
    for path in _core_modules():
        for name in _imported_modules(ast.parse(path.read_text())):
            if name.startswith("simrec_cli.commands") or name == "typer" or name.startswith("typer."):
                offenders.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert offenders == []


def test_exit_codes_are_defined_once_in_errors() -> None:
    definitions = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id.startswith("EXIT_"):
                        definitions.append(f"{path.relative_to(PACKAGE)}:{target.id}")
    assert definitions and all(item.startswith("errors.py:") for item in definitions), definitions


def _package_of(module: str) -> str | None:
    """The top-level part of simrec_cli a module belongs to (`engine`, `cli`, ...); None outside simrec_cli."""
    parts = module.split(".")
    if parts[0] != "simrec_cli" or len(parts) < 2:
        return None
    return parts[1]


def test_the_packages_import_each_other_in_one_direction_only() -> None:
    """Every import, the ones made inside functions included, points down: a cycle between two packages is an
    import that runs back up, and it names the files that close it."""
    imports: dict[str, set[str]] = {}
    where: dict[tuple[str, str], str] = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        source = relative.parts[0].removesuffix(".py")
        for name in _imported_modules(ast.parse(path.read_text())):
            target = _package_of(name)
            if target is not None and target != source:
                imports.setdefault(source, set()).add(target)
                where.setdefault((source, target), str(relative))
    try:
        order = list(graphlib.TopologicalSorter(imports).static_order())
    except graphlib.CycleError as error:
        cycle = error.args[1]
        links = [f"{where[(a, b)]} imports simrec_cli.{b}" for a, b in zip(cycle[1:], cycle[:-1], strict=True)]
        raise AssertionError(f"packages in a circle: {' -> '.join(cycle)} ({'; '.join(links)})") from error
    assert {"engine", "runtimes", "export", "model_files", "commands"} <= set(order)
