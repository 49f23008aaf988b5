"""Check the `simrec ...` and `make ...` commands written in Markdown against the real CLI, without running them.

A documented command is checked as the shell and the CLI would read it: the verb must exist, every option must
exist for that verb (with a value of the type it takes), every `KEY=VALUE` override must name a real setting with
a value it accepts (validated by the project's own loader, together with the command's `--preset`), and every
`make` target must exist in the Makefile. Documentation writes placeholders where a user fills in their own
values: `CKPT`, `RUN_DIR`, `N`, `<folder>`, `...`, `[--half]` (an optional part) and `auto|fp32|bf16` (one of
several values; each is checked). Those are accepted as such.

Commands are read from fenced shell blocks (`\\` continuations joined, `#` comments dropped) and from inline code
spans that start with `simrec ` or `make `; an inline span of overrides alone (`train.amp.enabled=true`) or a
dotted settings key (`train.base_lr`) must name real settings too.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from tools.docs.cli_reference import PROGRAM, root_command

SHELL_FENCES = {"", "bash", "sh", "shell", "console"}
CONTROL = {"|", "||", "&&", ";", "&"}
WRAPPERS = {"srun", "time", "nohup", "exec"}
NAMESPACES = ("model", "dataset", "train", "optim")
OVERRIDE = re.compile(r"^([a-z_][a-z0-9_]*(?:\.[a-z0-9_+]+)+)=(.*)$", re.S)
SETTING_KEY = re.compile(r"^(?:" + "|".join(NAMESPACES) + r")(?:\.[a-z0-9_]+)+$")
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*$|<[^>]*>|\.\.\.|\$")
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+(?:\n[^`\n]+)*)`(?!`)")


@dataclass(frozen=True)
class DocumentedCommand:
    """One command as the documentation writes it, and where: `README.md:42`."""

    where: str
    text: str
    inline: bool = False


def is_placeholder(value: str) -> bool:
    """A value the user fills in (`CKPT`, `N`, `<folder>`, `...`, `$HOME/runs`), not one to check."""
    return bool(PLACEHOLDER.search(value))


def _shell_lines(block: list[str], first_line: int) -> Iterator[tuple[int, str]]:
    """The block's logical lines (continuations joined), each with the number of its first physical line."""
    pending: list[str] = []
    start = first_line
    for number, line in enumerate(block, first_line):
        if not pending:
            start = number
        stripped = line.rstrip()
        if stripped.startswith("$ "):
            stripped = stripped[2:]
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        yield start, " ".join(pending)
        pending = []
    if pending:
        yield start, " ".join(pending)


def documented_commands(text: str, source: str) -> list[DocumentedCommand]:
    """Every shell line of the fenced shell blocks and every inline code span of a Markdown text."""
    found: list[DocumentedCommand] = []
    lines = text.splitlines()
    prose: list[tuple[int, str]] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            prose.append((index + 1, lines[index]))
            index += 1
            continue
        fence, language = opening.group(2), opening.group(3).lower()
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        if language in SHELL_FENCES:
            for number, line in _shell_lines(lines[index + 1 : end], index + 2):
                if line.strip():
                    found.append(DocumentedCommand(f"{source}:{number}", line))
        index = end + 1
    paragraph_text = "\n".join(line for _, line in prose)
    line_of = [number for number, line in prose for _ in range(len(line) + 1)]
    for match in INLINE_CODE.finditer(paragraph_text):
        number = line_of[match.start()] if match.start() < len(line_of) else 0
        found.append(DocumentedCommand(f"{source}:{number}", " ".join(match.group(1).split()), inline=True))
    return found


def _tokens(text: str) -> list[str]:
    return shlex.split(text, comments=True, posix=True)


def _segments(tokens: list[str]) -> Iterator[list[str]]:
    """The simple commands of a shell line: split at `|`, `&&`, `;`, ..., with redirections left out."""
    segment: list[str] = []
    skip_next = False
    for token in tokens:
        if skip_next:
            skip_next = False
        elif token in CONTROL:
            yield segment
            segment = []
        elif re.match(r"^\d?[<>]", token):
            skip_next = token.lstrip("0123456789") in ("<", ">", ">>")
        else:
            segment.append(token)
    yield segment


def _program(segment: list[str]) -> tuple[str, list[str]]:
    """('simrec' | 'make' | '', arguments) of a simple command, past env assignments and wrappers such as srun."""
    rest = list(segment)
    while rest and ENV_ASSIGNMENT.match(rest[0]):
        rest.pop(0)
    while rest and rest[0] in WRAPPERS:
        rest.pop(0)
        while rest and rest[0].startswith("-"):
            rest.pop(0)
    if not rest:
        return "", []
    head = rest[0]
    if head == PROGRAM or head.endswith(f"/{PROGRAM}"):
        return PROGRAM, rest[1:]
    if "python" in Path(head).name and rest[1:3] == ["-m", "simrec_cli"]:
        return PROGRAM, rest[3:]
    if head == "make":
        return "make", rest[1:]
    return "", []


def make_targets(makefile: Path) -> set[str]:
    """The targets a Makefile defines (rules of plain names, e.g. `test-all:`)."""
    text = makefile.read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w.-]*)\s*:(?!=)", text, flags=re.M))


class CommandChecker:
    """Checks documented commands against the `simrec` Typer app, the settings models and the Makefile."""

    def __init__(self, makefile: Path) -> None:
        self.root = root_command()
        self.root_ctx = typer.Context(self.root, info_name=PROGRAM)
        self.targets = make_targets(makefile)

    def problems(self, command: DocumentedCommand) -> list[str]:
        """What is wrong with one documented command (empty when nothing is)."""
        text = command.text.strip()
        if command.inline and not re.match(r"^(?:\S+/)?(?:simrec|make|srun) ", text + " "):
            return self._setting_problems(text)
        try:
            tokens = _tokens(text)
        except ValueError as error:
            return [f"cannot be read as a shell line ({error})"] if not command.inline else []
        found = []
        for segment in _segments(tokens):
            program, args = _program(segment)
            if program == PROGRAM:
                found.extend(self._simrec_problems(args))
            elif program == "make":
                found.extend(self._make_problems(args))
        return found

    def _setting_problems(self, text: str) -> list[str]:
        """An inline span of overrides alone, or a dotted settings key, must name real settings."""
        from simrec_cli.settings import valid_keys

        words = text.split()
        if words and all(OVERRIDE.match(word) for word in words):
            return self._override_problems(words, preset=None)
        if SETTING_KEY.match(text) and text not in valid_keys():
            return [f"`{text}` is not a setting (see docs/reference/settings.md)"]
        return []

    def _make_problems(self, args: list[str]) -> list[str]:
        wanted = [arg for arg in args if not arg.startswith("-") and "=" not in arg and not is_placeholder(arg)]
        missing = [target for target in wanted if target not in self.targets]
        return [f"make target '{target}' does not exist in the Makefile" for target in missing]

    def _simrec_problems(self, args: list[str]) -> list[str]:
        args = _without_optional_brackets(args)
        command, ctx, path = self.root, self.root_ctx, PROGRAM
        while True:
            found, rest = self._option_problems(command, ctx, path, args, stop_at_positional=True)
            if found:
                return found
            if not hasattr(command, "list_commands") or not rest:
                break
            verb, args = rest[0], rest[1:]
            if is_placeholder(verb):
                return []
            child = command.get_command(ctx, verb)
            if child is None:
                verbs = ", ".join(command.list_commands(ctx))
                return [f"`{path} {verb}`: no such verb (the verbs are {verbs})"]
            command, ctx, path = child, typer.Context(child, info_name=verb, parent=ctx), f"{path} {verb}"
        if hasattr(command, "list_commands"):
            return []
        found, positionals = self._option_problems(command, ctx, path, args, stop_at_positional=False)
        return found + self._argument_problems(command, ctx, path, positionals, args)

    def _option_problems(
        self, command: Any, ctx: Any, path: str, args: list[str], *, stop_at_positional: bool
    ) -> tuple[list[str], list[str]]:
        """Check the options among `args`; the problems and the positional arguments left."""
        options = {
            name: param
            for param in command.get_params(ctx)
            if param.param_type_name == "option"
            for name in (*param.opts, *param.secondary_opts)
        }
        positionals: list[str] = []
        index = 0
        while index < len(args):
            token = args[index]
            index += 1
            if token == "...":
                continue
            if not token.startswith("-") or token == "-" or re.match(r"^-\d", token):
                if stop_at_positional:
                    return [], args[index - 1 :]
                positionals.append(token)
                continue
            name, has_value, value = token.partition("=") if token.startswith("--") else (token, "", "")
            param = options.get(name)
            if param is None:
                known = ", ".join(sorted(name for name in options if name.startswith("--")))
                return [f"`{path}` has no option {name} (its options: {known})"], []
            if param.is_flag or param.count:
                if has_value:
                    return [f"`{path} {name}` is a switch and takes no value"], []
                continue
            if not has_value:
                if index >= len(args):
                    return [f"`{path} {name}` needs a value"], []
                value, index = args[index], index + 1
            problem = _value_problem(param, ctx, value)
            if problem:
                return [f"`{path} {name} {value}`: {problem}"], []
        return [], positionals

    def _argument_problems(
        self, command: Any, ctx: Any, path: str, positionals: list[str], args: list[str]
    ) -> list[str]:
        arguments = [param for param in command.get_params(ctx) if param.param_type_name == "argument"]
        variadic = any(param.nargs == -1 for param in arguments)
        if not variadic and len(positionals) > len(arguments):
            return [f"`{path}` takes {len(arguments)} argument(s), given {len(positionals)}: {positionals}"]
        by_name: dict[str, list[str]] = {}
        remaining = list(positionals)
        for position, param in enumerate(arguments):
            if param.nargs == -1:
                after = sum(1 for later in arguments[position + 1 :] if later.nargs != -1)
                taken, remaining = remaining[: len(remaining) - after], remaining[len(remaining) - after :]
            else:
                taken, remaining = remaining[:1], remaining[1:]
            by_name[param.name] = taken
        overrides = by_name.get("overrides", [])
        found = [f"`{path}`: override '{item}' is not KEY=VALUE" for item in overrides if not OVERRIDE.match(item)]
        if found:
            return found
        return self._override_problems(overrides, preset=_preset_of(args))

    def _override_problems(self, overrides: list[str], preset: str | None) -> list[str]:
        """Validate the overrides (with the command's preset) as `simrec` would; each `a|b` alternative in turn."""
        from simrec_cli.errors import SimrecError
        from simrec_cli.settings import load_settings, packaged_presets, valid_keys

        known = set(valid_keys())
        checked: list[list[str]] = []
        for item in overrides:
            key, _, value = item.partition("=")
            if key not in known:
                return [f"override '{item}': there is no setting {key} (see docs/reference/settings.md)"]
            if not is_placeholder(value):
                checked.append([f"{key}={choice}" for choice in value.split("|")] if "|" in value else [item])
        base = [choices[0] for choices in checked]
        variants = [base] + [
            [*base[:position], choice, *base[position + 1 :]]
            for position, choices in enumerate(checked)
            for choice in choices[1:]
        ]
        preset = preset if preset in packaged_presets() else None
        for variant in variants:
            try:
                load_settings(preset, variant)
            except SimrecError as error:
                return [f"overrides {' '.join(variant)}: {error}"]
        return []


def _without_optional_brackets(args: list[str]) -> list[str]:
    """`[--opset 17]` marks an optional part: read it as `--opset 17`."""
    cleaned = []
    depth = 0
    for token in args:
        if token.startswith("[-"):
            depth += 1
            token = token[1:]
        if depth and token.endswith("]"):
            depth -= 1
            token = token[:-1]
        if token:
            cleaned.append(token)
    return cleaned


def _preset_of(args: list[str]) -> str | None:
    for index, token in enumerate(args[:-1]):
        if token in ("--preset", "-p"):
            return args[index + 1]
    return next((token.partition("=")[2] for token in args if token.startswith("--preset=")), None)


def _value_problem(param: Any, ctx: Any, value: str) -> str | None:
    """Why the CLI would refuse `value` for an option (its type, its range), or None; placeholders pass."""
    for choice in value.split("|"):
        if is_placeholder(choice):
            continue
        try:
            param.process_value(ctx, [choice] if param.multiple else choice)
        except Exception as error:  # click's BadParameter and its kin: the message the user would see
            return str(error)
    return None
