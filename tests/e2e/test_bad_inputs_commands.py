"""Bad-input catalogue, the verbs' own inputs: predict's sources and pairs files, eval's options and outputs,
export's format, output and opset, and resume's run directory and overrides."""

from __future__ import annotations

import json
import pickle
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from simrec_cli.errors import EXIT_SOME_FAILED
from tests.e2e.bad_inputs import Places, Row, judge, own_anns, prepared_copy, replace_image, write_file
from tests.network import free_port

Args = Callable[[Places], Sequence[object]]


# ------------------------------------------------------------------------------------------ predict sources


def _predict(*args: object, save: bool = False) -> Args:
    """`simrec predict ARGS` with the shared checkpoint; a `Path`-like string starting with @ is in the row folder."""
    return lambda p: ["predict", *[p.tmp / str(a)[1:] if str(a).startswith("@") else a for a in args],
                      "--checkpoint", p.checkpoint, *([] if save else ["--no-save"])]  # fmt: skip


def _image(name: str) -> Callable[[Places], None]:
    def prepare(p: Places) -> None:
        (p.tmp / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p.image, p.tmp / name)

    return prepare


def _pairs(name: str, text: str | bytes) -> Callable[[Places], None]:
    def prepare(p: Places) -> None:
        _image("a.jpg")(p)
        write_file(name, text)(p)

    return prepare


def _pairs_row(id: str, name: str, text: str | bytes, names: str, says: str = "") -> Row:
    return Row(f"pairs {id}", _predict("--pairs", f"@{name}"), names, _pairs(name, text), says=says)


LONG = "! " * 5000  # a 10,000-character expression without a word: quoted short, not whole

PREDICT = [
    Row("predict image missing", _predict("@missing.jpg", "the dog"), "missing.jpg", says="does not exist"),
    Row("predict folder without images", _predict("@empty", "the dog"), "empty", lambda p: (p.tmp / "empty").mkdir(),
        says="holds no images"),
    Row("predict glob matches nothing", _predict("@*.png", "the dog"), "*.png", says="no image matches"),
    Row("predict expression empty", _predict("@a.jpg", ""), "expression 1", _image("a.jpg"), says="empty"),
    Row("predict expression blank", _predict("@a.jpg", "the dog", "   "), "expression 2", _image("a.jpg")),
    Row("predict no expression", _predict("@a.jpg"), "no expression", _image("a.jpg")),
    Row("predict no image", _predict(), "no image given"),
    Row("predict source and pairs", _predict("@a.jpg", "the dog", "--pairs", "@p.jsonl"), "--pairs",
        _pairs("p.jsonl", '{"image": "a.jpg", "expression": "the dog"}\n')),
    Row("predict expression without words", _predict("@a.jpg", "!!! ..."), "'!!! ...'", _image("a.jpg"),
        says="has no words"),
    Row("predict huge expression without words", _predict("@a.jpg", LONG), "characters)", _image("a.jpg"),
        says="has no words"),
    Row("predict output dir is a file", _predict("@a.jpg", "the dog", "--output-dir", "@out", save=True),
        "--output-dir", lambda p: (_image("a.jpg")(p), write_file("out", "x")(p)), says="is a file"),
    Row("predict output dir read-only", lambda p: [*_predict("@a.jpg", "the dog", save=True)(p), "--output-dir",
        p.read_only / "out"], "--output-dir", _image("a.jpg"), says="read-only", needs_read_only=True),
    Row("predict --device tpu", _predict("@a.jpg", "the dog", "--device", "tpu"), "--device", _image("a.jpg")),
    Row("predict --batch-size 0", _predict("@a.jpg", "the dog", "--batch-size", "0"), "--batch-size",
        _image("a.jpg"), usage=True),
    Row("predict image not an image", _predict("@fake.jpg", "the dog"), "fake.jpg", write_file("fake.jpg", "text"),
        exit_code=EXIT_SOME_FAILED, says="could not be read"),
    Row("predict image truncated among good ones", _predict("@mixed", "the dog"), "cut.jpg",
        lambda p: (_image("mixed/good.jpg")(p), write_file("mixed/cut.jpg", p.image.read_bytes()[:300])(p)),
        exit_code=EXIT_SOME_FAILED, says="1 of 2 images"),
    _pairs_row("file missing", "missing.jsonl", "", "missing.jsonl"),
    _pairs_row("wrong suffix", "pairs.txt", "a.jpg,the dog\n", "pairs.txt", ".jsonl or .csv"),
    _pairs_row("line not json", "p.jsonl", '{"image": "a.jpg", "expression": "dog"}\n{oops\n', "line 2",
               "not valid JSON"),
    _pairs_row("line not an object", "p.jsonl", '["a.jpg", "the dog"]\n', "line 1", "expected a mapping"),
    _pairs_row("line without expression", "p.jsonl", '{"image": "a.jpg"}\n', "line 1", "either 'expression'"),
    _pairs_row("expressions not a list", "p.jsonl", '{"image": "a.jpg", "expressions": "dog"}\n', "line 1",
               "field expressions: expected a list"),
    _pairs_row("image empty", "p.jsonl", '{"image": " ", "expression": "dog"}\n', "line 1", "field image"),
    _pairs_row("expression a number", "p.jsonl", '{"image": "a.jpg", "expression": 42}\n', "line 1",
               "expected text, found 42"),
    _pairs_row("expression a huge list", "p.jsonl", json.dumps({"image": "a.jpg", "expression": ["w"] * 3000}) + "\n",
               "line 1", "found a list of 3,000 items"),
    _pairs_row("image path of a million characters", "p.jsonl", json.dumps({"image": "a" * 10**6, "expression": "x"}),
               "line 1", "expected a path of at most 4,096 bytes"),
    _pairs_row("csv without header", "p.csv", "a.jpg,the dog\n", "p.csv", "header row"),
    _pairs_row("csv image empty", "p.csv", "image,expression\n,the dog\n", "line 2", "field image"),
    _pairs_row("csv quote never closed", "p.csv", 'image,expression\na.jpg,"the dog\nb.jpg,the cat\nc.jpg,x\n',
               "line 2", "a quote opened on this line is never closed"),
    _pairs_row("csv quoted field over two lines", "p.csv", 'image,expression\na.jpg,"the\ndog"\nb.jpg,the cat\n',
               "line 2", "runs on to line 3"),
    _pairs_row("csv expression with an unquoted comma", "p.csv", "image,expression\na.jpg,the dog,on the left\n",
               "line 2", "3 fields but the header names 2"),
    _pairs_row("csv header ending in a comma, expression with an unquoted comma", "p.csv",
               "image,expression,\na.jpg,the dog,on the left\n", "line 2", "3 fields but the header names 2"),
    _pairs_row("csv row longer than its header", "p.csv", "image,expression,\na.jpg,the dog,x,y\n", "line 2",
               "4 fields but the header names 2"),
    _pairs_row("not utf-8", "p.jsonl", b'{"image": "a.jpg", "expression": "caf\xe9"}\n', "p.jsonl", "cannot be read"),
    _pairs_row("empty", "p.jsonl", "\n\n", "p.jsonl", "holds no pairs"),
    Row("pairs file is a folder", _predict("--pairs", "@p.jsonl"), "p.jsonl", lambda p: (p.tmp / "p.jsonl").mkdir()),
]  # fmt: skip

# --------------------------------------------------------------------------------------------------- eval


def _eval(*args: object) -> Args:
    return lambda p: ["eval", p.checkpoint, "--device", "cpu",
                      *[p.tmp / str(a)[1:] if str(a).startswith("@") else a for a in args]]  # fmt: skip


EVAL = [
    Row("eval --dataset unknown", _eval("--dataset", "imagenet"), "imagenet"),
    Row("eval --dataset not prepared", _eval("--dataset", "refcoco", "--data-root", "@data"), "refcoco.json",
        says="prepare-data"),
    Row("eval --data-root missing", _eval("--data-root", "@nowhere"), "nowhere", says="prepare-data"),
    Row("eval --json is a folder", _eval("--json", "@m.json"), "m.json", lambda p: (p.tmp / "m.json").mkdir(),
        says="is a folder"),
    Row("eval --json below a file", _eval("--json", "@file/m.json"), "--json", write_file("file", "x"),
        says="is a file"),
    Row("eval --json read-only", lambda p: [*_eval()(p), "--json", p.read_only / "m.json"], "--json",
        needs_read_only=True, says="read-only"),
    Row("eval --save-predictions read-only", lambda p: [*_eval()(p), "--save-predictions", p.read_only / "p.jsonl"],
        "--save-predictions", needs_read_only=True, says="read-only"),
    Row("eval --split given twice", _eval("--split", "val", "--split", "test", "--split", "val"), "'val'",
        says="given twice"),
    Row("eval --batch-size 0", _eval("--batch-size", "0"), "--batch-size", usage=True),
    Row("eval --nproc 0", _eval("--nproc", "0"), "--nproc"),
    Row("eval --gpus without cuda", _eval("--gpus", "2"), "--gpus"),
    Row("eval --protocol unknown", _eval("--protocol", "loose"), "--protocol", says="original, clipped"),
]  # fmt: skip

# ------------------------------------------------------------------------------------------------- export


def _export(*args: object) -> Args:
    return lambda p: ["export", p.checkpoint, *[p.tmp / str(a)[1:] if str(a).startswith("@") else a for a in args]]


EXPORT = [
    Row("export --format tflite", _export("--format", "tflite", "-o", "@m.onnx"), "tflite", says="--format onnx"),
    Row("export output without .onnx", _export("-o", "@model.bin"), "model.bin", says="must end in .onnx"),
    Row("export output is a folder", _export("-o", "@m.onnx"), "m.onnx", lambda p: (p.tmp / "m.onnx").mkdir(),
        says="is a folder"),
    Row("export output below a file", _export("-o", "@file/m.onnx"), "-o/--output", write_file("file", "x"),
        says="is a file"),
    Row("export output read-only", lambda p: [*_export()(p), "-o", p.read_only / "m.onnx"], "-o/--output",
        needs_read_only=True, says="read-only"),
    Row("export --opset 11", _export("-o", "@m.onnx", "--opset", "11"), "--opset", usage=True),
    Row("export --opset 99", _export("-o", "@m.onnx", "--opset", "99"), "opset 99", process=True,
        says="ONNX export failed"),
    Row("export output name too long", _export("-o", "@" + "m" * 300 + ".onnx"), "m" * 60 + ".onnx",
        says="File name too long"),
    Row("export --device tpu", _export("-o", "@m.onnx", "--device", "tpu"), "tpu"),
]  # fmt: skip

# ------------------------------------------------------------------------------------------------- resume


def _run_copy(p: Places) -> None:
    shutil.copytree(p.run, p.tmp / "run")


def _damaged_metrics(damage: Callable[[str], str]) -> Callable[[Places], None]:
    """A copy of the shared run whose metrics.csv `damage` rewrote (as an editor or a copy cut short would)."""

    def prepare(p: Places) -> None:
        _run_copy(p)
        path = p.tmp / "run" / "metrics.csv"
        path.write_bytes(damage(path.read_text()).encode("utf-8", "surrogateescape"))

    return prepare


def _resume(*args: object) -> Args:
    return lambda p: ["resume", p.tmp / "run", "--device", "cpu", *args]


RESUME = [
    Row("resume folder without last.pth", _resume(), "run", lambda p: (p.tmp / "run").mkdir(),
        says="holds no last.pth"),
    Row("resume path missing", _resume(), "run", says="does not exist"),
    Row("resume changes batch size", _resume("train.batch_size=4"), "train.batch_size", _run_copy,
        says="keeps its settings"),
    Row("resume unknown override", _resume("train.epohcs=4"), "train.epochs", _run_copy, says="unknown setting"),
    Row("resume epochs infinite", _resume("train.epochs=.inf"), "train.epochs", _run_copy),
    Row("resume epochs zero", _resume("train.epochs=0"), "train.epochs", _run_copy),
    Row("resume data moved away", lambda p: [*_resume()(p), "train.epochs=3", f"dataset.data_root={p.tmp / 'gone'}"],
        "prepare-data", _run_copy),
    Row("resume --nproc 0", _resume("--nproc", "0"), "--nproc", _run_copy),
    Row("resume metrics.csv damaged", _resume("train.epochs=3"), "metrics.csv",
        _damaged_metrics(lambda text: text + "2,abc,,\n"), says="line 4 is damaged"),
    Row("resume metrics.csv cut short", _resume("train.epochs=3"), "metrics.csv",
        _damaged_metrics(lambda text: text[:-12]), says="line 3 is damaged"),
    Row("resume metrics.csv without header", _resume("train.epochs=3"), "metrics.csv",
        _damaged_metrics(lambda text: "1,2,3\n"), says="no header line"),
    Row("resume metrics.csv not utf-8", _resume("train.epochs=3"), "metrics.csv",
        _damaged_metrics(lambda text: "epoch,loss\n1,\udcff\n"), says="not a readable CSV"),
]  # fmt: skip


# ---------------------------------------------------------------------------------- eval --report, compare


def _serve(*args: object) -> Args:
    """`simrec serve` of m.pth (see _text_model: the options are refused before it would be loaded), any free port."""
    return lambda p: ["serve", p.tmp / "m.pth", "--port", "0", *args]


_text_model = write_file("m.pth", "text")

OTHERS = [
    Row("eval --report is a file", _eval("--report", "@report"), "report", write_file("report", "x"), says="is a file"),
    Row("eval --json and --report at one path", _eval("--json", "@out", "--report", "@out"), "--json and --report",
        says="both name"),
    Row("eval --json inside the --report folder", _eval("--json", "@rep/m.json", "--report", "@rep"), "--json",
        says="inside the --report folder"),
    Row("eval --json and --save-predictions at one path", _eval("--json", "@o.json", "--save-predictions",
        "@o.json"), "--json and --save-predictions", says="both name"),
    Row("eval --report holds other files", _eval("--report", "@report"), "report", write_file("report/notes.txt", "x"),
        says="holds files"),
    Row("compare only unreadable paths", lambda p: ["compare", p.tmp / "gone", p.tmp / "notes.pth"],
        "none of the paths", write_file("notes.pth", "text")),
    Row("compare --plot below a file", lambda p: ["compare", p.run, "--plot", p.tmp / "file" / "c.png"], "--plot",
        write_file("file", "x"), says="is a file"),
    Row("compare --plot not a png", lambda p: ["compare", p.run, "--plot", p.tmp / "curves.txt"], "curves.txt",
        says="must end in .png"),
    Row("compare --markdown and --csv", lambda p: ["compare", p.run, "--markdown", "--csv"], "--markdown and --csv"),
    Row("serve model missing", lambda p: ["serve", p.tmp / "gone.pth"], "gone.pth", says="does not exist"),
    Row("serve model is a folder", lambda p: ["serve", p.tmp / "run"], "best.pth", lambda p: (p.tmp / "run").mkdir(),
        says="is a folder"),
    Row("serve model is text", lambda p: ["serve", p.tmp / "m.pth"], "m.pth", write_file("m.pth", "text"),
        says="not a readable checkpoint"),
    Row("serve --timeout-s nan", lambda p: ["serve", p.checkpoint, "--timeout-s", "nan"], "--timeout-s",
        says="finite"),
    Row("serve --max-wait-ms inf", lambda p: ["serve", p.checkpoint, "--max-wait-ms", "inf"], "--max-wait-ms",
        says="finite"),
    Row("serve --port out of range", lambda p: ["serve", p.checkpoint, "--port", "99999"], "--port 99999"),
    Row("serve --max-batch 0", lambda p: ["serve", p.checkpoint, "--max-batch", "0"], "--max-batch 0"),
    Row("serve --host not of this machine", _serve("--host", "203.0.113.7"), "203.0.113.7", _text_model,
        says="check --host"),
    Row("serve --host no resolver knows", _serve("--host", "no-such-host.invalid"), "no-such-host.invalid",
        _text_model, says="check --host"),
    Row("serve --host with a NUL byte", _serve("--host", "local\x00host"), "--host", _text_model,
        says="check --host"),
    Row("serve --api-key too short", _serve("--api-key", "secret"), "--api-key", _text_model, says="6 characters"),
    Row("serve SIMREC_API_KEY with a space", _serve(), "SIMREC_API_KEY", _text_model, says="without spaces",
        env=(("SIMREC_API_KEY", "a token with spaces in it"),)),
    Row("serve --header-timeout-s 0", _serve("--header-timeout-s", "0"), "--header-timeout-s 0", _text_model,
        says="positive"),
    Row("serve --workers 2 and --port 0", _serve("--workers", "2"), "--workers needs a fixed --port", _text_model),
]  # fmt: skip

# Rows in a real process: what native code and Python's warnings print reaches the terminal only there.
PROCESS = [
    Row("serve --workers 2 with an unreadable checkpoint, in a process", lambda p: ["serve", p.tmp / "m.pth",
        "--workers", "2", "--port", free_port()], "m.pth", _text_model, says="not a readable checkpoint",
        process=True),
    Row("eval image corrupt, in a process", _eval("--data-root", "@data"), "cannot be decoded",
        lambda p: (prepared_copy()(p), replace_image(p, _first_test_image(p), b"\xff\xd8 not a jpeg")),
        process=True),
    Row("predict plain pickle payload, in a process", lambda p: ["predict", p.image, "the dog", "--checkpoint",
        p.tmp / "evil.pth"], "evil.pth", write_file("evil.pth", pickle.dumps({"model": [1, 2]}, protocol=4)),
        says="not a readable checkpoint", process=True),
]  # fmt: skip


def _first_test_image(p: Places) -> str:
    return f"{int(json.loads(own_anns(p).read_text())['test'][0]['iid']):06d}.jpg"


@pytest.mark.parametrize("row", [row.param() for row in PREDICT + EVAL + EXPORT + RESUME + OTHERS + PROCESS])
def test_bad_command_input(row: Row, places: Places) -> None:
    judge(row, places)


def test_compare_draws_no_curve_for_a_damaged_metrics_csv(places: Places) -> None:
    """A run whose metrics.csv is damaged is still compared (its best.pth is whole); only its curve is left out."""
    from tests.e2e.bad_inputs import run_cli

    _damaged_metrics(lambda text: text + "2,abc,,\n")(places)
    outcome = run_cli(["compare", places.tmp / "run", "--plot", places.tmp / "curves.png"], places.tmp)
    assert outcome.exit_code == 0, outcome.output[-3000:]
    assert "Traceback" not in outcome.output and "no readable metrics.csv" in outcome.stderr
    assert (places.tmp / "curves.png").stat().st_size > 0


def test_an_image_with_the_longest_name_gets_its_picture(places: Places) -> None:
    """An image named with all 255 bytes a file name may have is answered and drawn (the picture's name and its
    temporary name are cut to fit)."""
    from tests.e2e.bad_inputs import run_cli

    name = "é" * 125 + ".jpg"
    _image(name)(places)
    outcome = run_cli(_predict(f"@{name}", "the dog", "--output-dir", "@out", save=True)(places), places.tmp)
    assert outcome.exit_code == 0, outcome.output[-3000:]
    assert [path.suffix for path in (places.tmp / "out").iterdir()] == [".jpg"]


def test_a_float16_export_prints_no_warnings_of_onnxruntime(places: Places) -> None:
    """onnxruntime's notes about float16 nodes it cannot fold on a CPU stay out of the output."""
    from tests.e2e.bad_inputs import run_cli

    outcome = run_cli(_export("-o", "@h.onnx", "--half")(places), places.tmp, process=True)
    assert outcome.exit_code == 0, outcome.output[-3000:]
    assert "onnxruntime:" not in outcome.output and "Traceback" not in outcome.output, outcome.output[-3000:]


def test_a_failed_export_prints_no_graph(places: Places) -> None:
    """torch prints the traced graph from native code when an export fails; none of it reaches stdout."""
    outcome = judge(EXPORT[6], places)
    assert len(outcome.stdout.splitlines()) <= 2, outcome.stdout[:2000]


def test_eval_checks_its_outputs_before_evaluating(places: Places) -> None:
    """A read-only --json is refused before the first split is evaluated (no table, no speed line)."""
    outcome = judge(EVAL[5], places)
    assert "Acc@0.5" not in outcome.stdout and "speed per image" not in outcome.stdout


def test_long_expressions_are_quoted_short_in_warnings(places: Places, tmp_path: Path) -> None:
    """A 5,000-word expression is answered, and each warning about it quotes at most about 60 characters."""
    from tests.e2e.bad_inputs import run_cli

    shutil.copyfile(places.image, tmp_path / "a.jpg")
    words = " ".join(["zebra"] * 2500 + ["quokka"] * 2500)
    outcome = run_cli(["predict", tmp_path / "a.jpg", words, "--checkpoint", places.checkpoint, "--no-save",
                       "--json"], tmp_path)  # fmt: skip
    assert outcome.exit_code == 0, outcome.output[-2000:]
    assert len(outcome.stdout.splitlines()) == 1
    assert "characters)" in outcome.stderr and len(outcome.stderr) < 1500, outcome.stderr
