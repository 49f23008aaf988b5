"""Every command in README.md and docs/ parses against the real CLI (verbs, options, settings, make targets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.docs.commands import CommandChecker, DocumentedCommand, documented_commands

ROOT = Path(__file__).resolve().parents[2]
# Inline examples that the docs show as refused input: each must stay refused.
REFUSED_ON_PURPOSE = {"train.base_lr=.inf"}


@pytest.fixture(scope="module")
def checker() -> CommandChecker:
    return CommandChecker(ROOT / "Makefile")


def _documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_every_documented_command_is_one_the_cli_accepts(checker: CommandChecker) -> None:
    problems = []
    checked = 0
    for document in _documents():
        for command in documented_commands(document.read_text(encoding="utf-8"), str(document.relative_to(ROOT))):
            found = checker.problems(command)
            checked += 1
            if command.text in REFUSED_ON_PURPOSE:
                assert found, f"{command.where}: `{command.text}` is shown as refused, but simrec accepts it"
            else:
                problems.extend(f"{command.where}: `{command.text}`: {problem}" for problem in found)
    assert checked > 500
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("simrec trian --preset refcoco-scratch", "no such verb"),
        ("simrec train --preset refcoco-scratch --gpu 8", "has no option --gpu"),
        ("simrec --verbose train", "has no option --verbose"),
        ("simrec eval best.pth --batch-size 0", "greater than or equal to 1"),
        ("simrec train --nproc two", "valid integer"),
        ("simrec predict a.jpg x --json=yes", "takes no value"),
        ("simrec export best.pth --opset", "needs a value"),
        ("simrec train train.batch_sise=4", "no setting train.batch_sise"),
        ("simrec train --preset synthetic-tiny train.epochs=two", "valid integer"),
        ("simrec config show -p refcoco-scratch train.warmup_epochs=30", "must be shorter than train.epochs"),
        ("simrec train train.amp.dtype=bfloat16|float32", "'float16' or 'bfloat16'"),
        ("simrec resume runs/x train.epochs=40 extra", "not KEY=VALUE"),
        ("simrec export a.pth b.pth", "takes 1 argument"),
        ("simrec eval a.pth b.pth", "not KEY=VALUE"),
        ("make tset", "make target 'tset'"),
        ("srun simrec train --preset refcoco-scratch --nnode 2", "has no option --nnode"),
        ("cd x && simrec predict a.jpg x --precison bf16 | tee out", "has no option --precison"),
    ],
)
def test_a_wrong_command_is_named(checker: CommandChecker, text: str, expected: str) -> None:
    problems = checker.problems(DocumentedCommand("doc.md:1", text))
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize(
    ("text", "expected"),
    [("train.sync_bn.enabled=maybe", "valid boolean"), ("train.no_such", "not a setting"), ("model.name=yolo", "")],
)
def test_a_wrong_setting_in_prose_is_named(checker: CommandChecker, text: str, expected: str) -> None:
    problems = checker.problems(DocumentedCommand("doc.md:1", text, inline=True))
    assert problems and all(expected in problem for problem in problems)


def test_continuations_placeholders_and_optional_parts_are_read_as_a_user_would(checker: CommandChecker) -> None:
    markdown = "\n".join(
        [
            "Run `simrec --debug train ...` or `simrec resume RUN_DIR train.epochs=N`, `make test TEST_WORKERS=0`.",
            "```bash",
            "# a comment, then a command over three lines",
            "simrec train --preset synthetic-tiny \\",
            "    --device cpu --nproc 2 \\",
            "    train.output_dir=$HOME/runs/x train.amp.dtype=bfloat16|float16",
            "simrec export CKPT --format onnx [--opset 17] [--half] [-o model.onnx]",
            "simrec predict --pairs pairs.jsonl --json > answers.jsonl",
            "```",
            "```text",
            "simrec train [OPTIONS] [overrides]...",
            "```",
            "```python",
            'print("simrec trian")',
            "```",
        ]
    )
    commands = documented_commands(markdown, "doc.md")
    shell = [command for command in commands if not command.inline]
    assert [command.where for command in shell] == ["doc.md:3", "doc.md:4", "doc.md:7", "doc.md:8"]
    assert shell[1].text.split()[-2:] == ["train.output_dir=$HOME/runs/x", "train.amp.dtype=bfloat16|float16"]
    assert {command.text for command in commands if command.inline} >= {
        "simrec --debug train ...",
        "simrec resume RUN_DIR train.epochs=N",
    }
    assert [problem for command in commands for problem in checker.problems(command)] == []
    broken = markdown.replace("--nproc 2", "--nprocs 2")
    assert any("--nprocs" in p for command in documented_commands(broken, "doc.md") for p in checker.problems(command))
