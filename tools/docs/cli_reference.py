"""The CLI reference page, read from the Typer app: every verb, its arguments and options, as `--help` has them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer

from tools.docs.markdown import cell, code, page, prose, table

PROGRAM = "simrec"


def root_command() -> Any:
    """The click group behind the `simrec` Typer app (every verb resolvable through it)."""
    from simrec_cli.cli import app

    return typer.main.get_command(app)


def walk_commands(command: Any, ctx: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any, Any]]:
    """(verb path, command, its context) for every command below `command`, sub-verbs after their group."""
    for name in command.list_commands(ctx):
        child = command.get_command(ctx, name)
        child_ctx = typer.Context(child, info_name=name, parent=ctx)
        yield (*path, name), child, child_ctx
        if hasattr(child, "list_commands"):
            yield from walk_commands(child, child_ctx, (*path, name))


def help_markdown(text: str) -> list[str]:
    """A command's help as Markdown: its paragraphs, and its `simrec ...` example lines as a bash block.

    Typer keeps the docstring's line breaks: prose lines are joined into paragraphs (a blank line ends one), and
    lines that start with `simrec ` (also after `Example: `) are gathered into one code block.
    """
    out: list[str] = []
    paragraph: list[str] = []
    examples: list[str] = []

    def end_paragraph() -> None:
        if paragraph:
            out.extend([prose(" ".join(paragraph)), ""])
            paragraph.clear()

    def end_examples() -> None:
        if examples:
            out.extend(["```bash", *examples, "```", ""])
            examples.clear()

    for raw in text.splitlines():
        line = raw.strip()
        label, _, rest = line.partition(": ")
        split = label in ("Example", "Examples") and rest.startswith(f"{PROGRAM} ")
        for part in [f"{label}:", rest] if split else [line]:
            if part.startswith(f"{PROGRAM} "):
                end_paragraph()
                examples.append(part)
            elif not part:
                end_paragraph()
            else:
                end_examples()
                paragraph.append(part)
    end_paragraph()
    end_examples()
    return out


def params_tables(command: Any, ctx: Any) -> list[str]:
    """The arguments and the options of `command` as two tables, from their help records (hidden ones left out)."""
    lines: list[str] = []
    for kind, title in (("argument", "Argument"), ("option", "Option")):
        rows = []
        for param in command.get_params(ctx):
            record = param.get_help_record(ctx)
            if param.param_type_name == kind and record is not None:
                rows.append([code(record[0]), cell(record[1])])
        if rows:
            lines.extend([*table([title, "Description"], rows), ""])
    return lines


def command_section(path: tuple[str, ...], command: Any, ctx: Any) -> list[str]:
    name = " ".join((PROGRAM, *path))
    level = "#" * (1 + len(path))
    usage = " ".join([name, *command.collect_usage_pieces(ctx)])
    return [
        f"{level} `{name}`",
        "",
        *help_markdown(command.help or ""),
        "```text",
        usage,
        "```",
        "",
        *params_tables(command, ctx),
    ]


def cli_reference() -> str:
    root = root_command()
    ctx = typer.Context(root, info_name=PROGRAM)
    body = [
        "## Global options",
        "",
        "Given before the verb: `simrec --debug train ...`.",
        "",
        *params_tables(root, ctx),
    ]
    for path, command, command_ctx in walk_commands(root, ctx):
        body.extend(command_section(path, command, command_ctx))
    intro = (
        f"{root.help} Every verb and option, as `simrec VERB --help` prints them. Settings overrides "
        "(`KEY=VALUE`) are listed in the [settings reference](settings.md)."
    )
    return page("Command line", "the Typer app in simrec_cli/cli.py", intro, body)
