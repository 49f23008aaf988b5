"""The direction of the layers: the core never reaches up into the commands, and exit codes have one home."""

from __future__ import annotations

import ast
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
