"""Bad-input catalogue, outputs: special files where a verb writes, and folders that are not simrec's.

Every output of every verb is given, in turn, a character device (made with mknod in the row's own folder, as
root; never one of /dev), a FIFO, a socket, a folder where a file belongs, a symbolic link to a device and a link
loop; an output folder gets a device, a FIFO, a socket, a regular file, a link to a device and a link loop; and an
output may be a file the command reads (the checkpoint, the dataset's annotations). Each is refused in one line
naming the path, exit 2, before any work, and nothing changes: the special file is still what it was. A folder that
a verb replaces whole (`eval --report`, `benchmark --keep`, prepare-data's synthetic images) and that holds a file
simrec did not write is refused naming that file; a run directory that holds files and no `run.json` of a simrec
run is refused naming the folder, and a start that fails in an empty folder leaves it empty (its mark goes again).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.e2e.bad_inputs import Places, Row, changes, judge, own_anns, prepared_copy, run_cli, snapshot, write_file
from tests.e2e.conftest import TINY

Args = Callable[[Places], Sequence[object]]
Make = Callable[[Path], object]


# ----------------------------------------------------------------------------------------- the special files


def _device(path: Path) -> None:
    """A character device with the null device's numbers, inside the row's folder (needs root)."""
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))


def _socket(path: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()


def _device_link(path: Path) -> None:
    _device(path.with_name(f"{path.name}.device"))
    path.symlink_to(path.with_name(f"{path.name}.device"))


def _regular_file(path: Path) -> None:
    path.write_text("the user's file")


def _link_loop(path: Path) -> None:
    path.symlink_to(path.name)  # a link to itself


SPECIAL: dict[str, tuple[Make, str]] = {
    "device": (_device, "a character device"),
    "fifo": (os.mkfifo, "a named pipe (FIFO)"),
    "socket": (_socket, "a socket"),
    "link to a device": (_device_link, "a symbolic link to a character device"),
    "link loop": (_link_loop, "a symbolic link loop"),
}
INSTEAD_OF_A_FILE = {**SPECIAL, "folder": (Path.mkdir, "a folder")}
INSTEAD_OF_A_FOLDER = {**SPECIAL, "file": (_regular_file, "a file")}


def _at(relative: str, make: Make) -> Callable[[Places], None]:
    """A preparation that makes the special file `relative` in the row's folder (making its parents)."""

    def prepare(p: Places) -> None:
        path = p.tmp / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        make(path)

    return prepare


def _then(*steps: Callable[[Places], object]) -> Callable[[Places], None]:
    def prepare(p: Places) -> None:
        for step in steps:
            step(p)

    return prepare


def _in_tmp(args: Sequence[object]) -> Args:
    """`args` with every `@name` replaced by the row's folder / name."""
    return lambda p: [p.tmp / str(a)[1:] if str(a).startswith("@") else a for a in args]


def _with_checkpoint(verb: str, *args: object) -> Args:
    return lambda p: [verb, p.checkpoint, *_in_tmp(args)(p)]


def _eval(*args: object) -> Args:
    return lambda p: [*_with_checkpoint("eval", *args)(p), "--device", "cpu", "--split", "val"]


def _train(output_dir: str, *overrides: str) -> Args:
    return lambda p: ["train", "--preset", "synthetic-tiny", "--device", "cpu", f"dataset.data_root={p.data}",
                      f"train.output_dir={p.tmp / output_dir}", *TINY, *overrides]  # fmt: skip


def _prepare(*args: object) -> Args:
    return lambda p: ["prepare-data", "--dataset", "synthetic", "--num-images", "10", "--image-size", "64",
                      *_in_tmp(args)(p)]  # fmt: skip


def _import(output: str) -> Args:
    return lambda p: ["import", p.checkpoint, "--preset", "synthetic-tiny", "--data-root", p.data,
                      "-o", *_in_tmp([output])(p)]  # fmt: skip


def _predict(output_dir: str) -> Args:
    return lambda p: ["predict", p.image, "the big red circle", "--checkpoint", p.checkpoint,
                      "--output-dir", *_in_tmp([output_dir])(p)]  # fmt: skip


def _copy_of_the_run(p: Places) -> None:
    shutil.copytree(p.run, p.tmp / "run")


def _replaced(relative: str, make: Make) -> Callable[[Places], None]:
    """Remove `relative` (a file of the copied run) and make the special file in its place."""

    def prepare(p: Places) -> None:
        (p.tmp / relative).unlink(missing_ok=True)
        make(p.tmp / relative)

    return prepare


# Each output file: (row name, the command, the path given relative to the row's folder, extra preparation)
FILES: list[tuple[str, Args, str, Callable[[Places], object] | None]] = [
    ("eval --json", _eval("--json", "@m.json"), "m.json", None),
    ("eval --save-predictions", _eval("--save-predictions", "@p.jsonl"), "p.jsonl", None),
    ("compare --plot", lambda p: ["compare", p.run, "--plot", p.tmp / "c.png"], "c.png", None),
    ("export -o", _with_checkpoint("export", "-o", "@m.onnx"), "m.onnx", None),
    ("export -o, its metadata file", _with_checkpoint("export", "-o", "@m.onnx"), "m.json", None),
    ("export openvino -o", _with_checkpoint("export", "--format", "openvino", "-o", "@m.xml"), "m.xml", None),
    ("export openvino weights", _with_checkpoint("export", "--format", "openvino", "-o", "@m.xml"), "m.bin", None),
    ("import -o", _import("@o.pth"), "o.pth", None),
    ("benchmark --json", _with_checkpoint("benchmark", "--json", "@b.json"), "b.json", None),
    ("benchmark --csv", _with_checkpoint("benchmark", "--csv", "@b.csv"), "b.csv", None),
    ("prepare-data anns", _prepare("--data-root", "@data"), "data/anns/synthetic.json", None),
    ("prepare-data masks", _prepare("--data-root", "@data"), "data/masks/synthetic.rle.json", None),
    ("prepare-data vocabulary", _prepare("--data-root", "@data"), "data/anns/synthetic.vocab.json", None),
    ("train last.pth", _train("run"), "run/last.pth", None),
    ("train log.txt", _train("run"), "run/log.txt", None),
    ("train metrics.csv", _train("run"), "run/metrics.csv", None),
    ("train run.lock", _train("run"), "run/run.lock", None),
    ("train run.json", _train("run"), "run/run.json", None),
    ("resume log.txt", lambda p: ["resume", p.tmp / "run", "--device", "cpu"], "run/log.txt", _copy_of_the_run),
    ("resume best.pth", lambda p: ["resume", p.tmp / "run", "--device", "cpu"], "run/best.pth", _copy_of_the_run),
]

# Each output folder: (row name, the command, the folder given relative to the row's folder)
FOLDERS: list[tuple[str, Args, str]] = [
    ("eval --report", _eval("--report", "@rep"), "rep"),
    ("predict --output-dir", _predict("@out"), "out"),
    ("train train.output_dir", _train("run"), "run"),
    ("prepare-data --output-dir", _prepare("--data-root", "@data", "--output-dir", "@out"), "out"),
    ("benchmark --keep", _with_checkpoint("benchmark", "--keep", "@kept"), "kept"),
]


def _file_row(name: str, args: Args, relative: str, setup: Callable[[Places], object] | None, kind: str) -> Row:
    make, words = INSTEAD_OF_A_FILE[kind]
    prepare = _then(setup, _replaced(relative, make)) if setup is not None else _at(relative, make)
    return Row(f"{name}: {kind}", args, Path(relative).name, prepare, says=words)


SPECIAL_FILE_ROWS = [
    _file_row(name, args, relative, setup, kind).param()
    for name, args, relative, setup in FILES
    for kind in INSTEAD_OF_A_FILE
]
SPECIAL_FOLDER_ROWS = [
    Row(f"{name}: {kind}", args, relative, _at(relative, make), says=words).param()
    for name, args, relative in FOLDERS
    for kind, (make, words) in INSTEAD_OF_A_FOLDER.items()
]


@pytest.mark.parametrize("row", SPECIAL_FILE_ROWS)
def test_a_special_file_as_an_output_is_refused(row: Row, places: Places) -> None:
    judge(row, places)


@pytest.mark.parametrize("row", SPECIAL_FOLDER_ROWS)
def test_a_special_file_as_an_output_folder_is_refused(row: Row, places: Places) -> None:
    judge(row, places)


# ------------------------------------------------------------------------------------------- foreign folders


def _report_json(pictures: list[str], fmt: str = "simrec-report-v1") -> str:
    gallery = {"misses": [{"file": name} for name in pictures], "hits": []}
    return json.dumps({"format": fmt, "splits": [{"split": "val", "gallery": gallery}]})


def _benchmark_json(files: list[str]) -> str:
    return json.dumps({"format": "simrec-benchmark-exports-v1", "files": files})


def _synthetic_images(*names: str, demo: bool = True) -> Callable[[Places], None]:
    """The row's own data root whose images/synthetic holds an earlier generator's demo.json and `names`."""

    def prepare(p: Places) -> None:
        folder = p.tmp / "data" / "images" / "synthetic"
        folder.mkdir(parents=True)
        if demo:
            (folder / "demo.json").write_text(json.dumps({"format": "simrec-synthetic-images-v1"}))
        for name in names:
            (folder / name).write_text("the user's")

    return prepare


FOREIGN = [
    Row("eval --report with our report.json and another file", _eval("--report", "@rep"), "notes.txt",
        _then(write_file("rep/report.json", _report_json([])), write_file("rep/notes.txt", "mine")),
        says="which simrec did not write there"),
    Row("eval --report with a foreign report.json", _eval("--report", "@rep"), "report.json",
        _then(write_file("rep/report.json", '{"title": "my report"}'), write_file("rep/index.html", "<p>mine</p>")),
        says="no report.json of simrec"),
    Row("eval --report of a newer format", _eval("--report", "@rep"), "report.json",
        write_file("rep/report.json", _report_json([], "simrec-report-v9")), says="no report.json of simrec"),
    Row("eval --report with a picture it does not list", _eval("--report", "@rep"), "images/extra.jpg",
        _then(write_file("rep/report.json", _report_json(["images/val-miss-01.jpg"])),
              write_file("rep/images/val-miss-01.jpg", "ours"), write_file("rep/images/extra.jpg", "mine"))),
    Row("eval --report with a link in it", _eval("--report", "@rep"), "index.html",
        _then(write_file("rep/report.json", _report_json([])), write_file("elsewhere.html", "mine"),
              lambda p: (p.tmp / "rep" / "index.html").symlink_to(p.tmp / "elsewhere.html"))),
    Row("eval --report is a link to a folder", _eval("--report", "@rep"), "rep",
        lambda p: ((p.tmp / "real").mkdir(), (p.tmp / "rep").symlink_to(p.tmp / "real")), says="symbolic link"),
    Row("prepare-data synthetic images with another file", _prepare("--data-root", "@data"), "notes.txt",
        _synthetic_images("notes.txt"), says="which simrec did not write there"),
    Row("prepare-data synthetic images without demo.json", _prepare("--data-root", "@data"), "synthetic",
        _synthetic_images("000000.jpg", demo=False), says="no demo.json of simrec"),
    Row("train into a folder of other files", _train("run"), lambda p: p.tmp / "run",
        _then(write_file("run/notes.txt", "mine"), write_file("run/config.yaml", "epochs: 300\n")),
        says="no run.json of a simrec run"),
    Row("train into a folder whose run.json is another tool's", _train("run"), lambda p: p.tmp / "run",
        _then(write_file("run/run.json", '{"format": "other-tool-run"}'), write_file("run/last.pth", "mine")),
        says="no run.json of a simrec run"),
    Row("train into a link to a folder of other files", _train("run"), lambda p: p.tmp / "run",
        _then(write_file("other/notes.txt", "mine"), lambda p: (p.tmp / "run").symlink_to(p.tmp / "other")),
        says="no run.json of a simrec run"),
    Row("resume a checkpoint kept among other files", lambda p: ["resume", p.tmp / "downloads" / "best.pth"],
        lambda p: p.tmp / "downloads",
        _then(write_file("downloads/notes.txt", "mine"),
              lambda p: shutil.copy(p.checkpoint, p.tmp / "downloads" / "best.pth")),
        says="train.output_dir=FOLDER"),
    Row("train into an empty folder, the start fails", _train("run", "train.batch_size=4096"), "train.batch_size",
        lambda p: (p.tmp / "run").mkdir()),
    Row("benchmark --keep a folder of other files", _with_checkpoint("benchmark", "--keep", "@kept"), "kept",
        write_file("kept/model.onnx", "mine"), says="no benchmark.json of simrec"),
    Row("benchmark --keep with our benchmark.json and another file", _with_checkpoint("benchmark", "--keep", "@kept"),
        "notes.txt", _then(write_file("kept/benchmark.json", _benchmark_json(["model.onnx"])),
                           write_file("kept/model.onnx", "ours"), write_file("kept/notes.txt", "mine")),
        says="which simrec did not write there"),
    Row("benchmark --keep is a link to a folder", _with_checkpoint("benchmark", "--keep", "@kept"), "kept",
        lambda p: ((p.tmp / "real").mkdir(), (p.tmp / "kept").symlink_to(p.tmp / "real")), says="symbolic link"),
    Row("benchmark --json inside its --keep folder", _with_checkpoint("benchmark", "--keep", "@kept", "--json",
        "@kept/b.json"), "--json", says="replaced as a whole"),
    Row("eval --gallery-misses without --report", _eval("--gallery-misses", "3"), "--gallery-misses",
        says="no --report was given"),
    Row("eval --gallery-hits without --report", _eval("--gallery-hits", "0"), "--gallery-hits",
        says="no --report was given"),
]  # fmt: skip


@pytest.mark.parametrize("row", [row.param() for row in FOREIGN])
def test_a_folder_simrec_does_not_own_is_refused(row: Row, places: Places) -> None:
    judge(row, places)


# ------------------------------------------------------------------------------ outputs that are inputs


def _run_copy_checkpoint(p: Places) -> Path:
    return p.tmp / "run" / "best.pth"


READ = [
    Row("eval --json is the checkpoint", lambda p: ["eval", _run_copy_checkpoint(p), "--device", "cpu", "--split",
        "val", "--json", _run_copy_checkpoint(p)], "--json", _copy_of_the_run, says="a file this command reads"),
    Row("eval --save-predictions is the dataset's annotations", lambda p: ["eval", p.checkpoint, "--device", "cpu",
        "--split", "val", "--data-root", p.tmp / "data", "--save-predictions", own_anns(p)], "--save-predictions",
        prepared_copy(), says="a file this command reads"),
    Row("benchmark --json is the dataset's annotations", lambda p: ["benchmark", p.checkpoint, "--formats", "pytorch",
        "--data-root", p.tmp / "data", "--json", own_anns(p)], "--json", prepared_copy(),
        says="a file this command reads"),
    Row("benchmark --csv is a link to the checkpoint", _with_checkpoint("benchmark", "--csv", "@ck.csv"), "ck.csv",
        lambda p: (p.tmp / "ck.csv").symlink_to(p.checkpoint), says="a file this command reads"),
    Row("export metadata file is the checkpoint", lambda p: ["export", p.tmp / "ck.json", "-o", p.tmp / "ck.onnx"],
        "ck.json", lambda p: shutil.copyfile(p.checkpoint, p.tmp / "ck.json"), says="a file this command reads"),
]  # fmt: skip


def _read_only(*args: object) -> Args:
    """`args` with every `^name` replaced by the read-only folder / name."""
    return lambda p: [p.read_only / str(a)[1:] if str(a).startswith("^") else a for a in args]


def _then_args(first: Args, second: Args) -> Args:
    return lambda p: [*first(p), *second(p)]


# Outputs in a folder nothing can be written to (a read-only tmpfs for root), for the options the other catalogues
# do not give one: refused before any work, naming the option.
READ_ONLY = [
    Row(f"{option} in a read-only folder", _then_args(args, _read_only(option, f"^{name}")), option,
        needs_read_only=True, says="read-only")
    for option, args, name in [
        ("--report", _eval(), "rep"),
        ("--plot", lambda p: ["compare", p.run], "c.png"),
        ("-o", lambda p: ["import", p.checkpoint, "--preset", "synthetic-tiny", "--data-root", p.data], "o.pth"),
        ("--json", _with_checkpoint("benchmark"), "b.json"),
        ("--keep", _with_checkpoint("benchmark"), "kept"),
        ("--data-root", _prepare(), "data"),
    ]
]  # fmt: skip


# Paths with odd characters: the one error line shows a newline or an escape character as an escape, so a name
# cannot split the line or move the terminal's cursor; an empty path is the current folder.
ODD = [
    Row("eval --json a FIFO whose name holds a newline", _eval("--json", "@m\nx.json"), "m\\nx.json",
        _at("m\nx.json", os.mkfifo), says="a named pipe"),
    Row("eval --report a FIFO whose name holds ESC", _eval("--report", "@r\x1b[31mx"), "r\\x1b[31mx",
        _at("r\x1b[31mx", os.mkfifo), says="a named pipe"),
    Row("compare --plot empty", lambda p: ["compare", p.run, "--plot", ""], "--plot", says="is a folder"),
]  # fmt: skip


@pytest.mark.parametrize("row", [row.param() for row in ODD])
def test_an_output_with_an_odd_name_is_named_in_one_line(row: Row, places: Places) -> None:
    judge(row, places)


@pytest.mark.parametrize("row", [row.param() for row in READ_ONLY])
def test_an_output_in_a_read_only_folder_is_refused(row: Row, places: Places) -> None:
    judge(row, places)


@pytest.mark.parametrize("row", [row.param() for row in READ])
def test_an_output_that_the_command_reads_is_refused(row: Row, places: Places) -> None:
    """`eval best.pth --json best.pth` replaced the checkpoint with the metrics, exit 0."""
    judge(row, places)


def test_a_report_replaces_its_own_earlier_report_and_nothing_beside_it(places: Places) -> None:
    """The second report replaces the first (every picture the first listed goes); a folder named like the old
    swap name (`.rep.old`) and the folders beside are left alone."""
    keep = places.tmp / ".rep.old" / "keep.txt"
    keep.parent.mkdir()
    keep.write_text("mine")
    first = run_cli(_eval("--report", "@rep", "--gallery-misses", "3", "--gallery-hits", "0")(places), places.tmp)
    assert first.exit_code == 0, first.output[-3000:]
    assert len(list((places.tmp / "rep" / "images").iterdir())) == 3
    second = run_cli(_eval("--report", "@rep", "--gallery-misses", "1", "--gallery-hits", "0")(places), places.tmp)
    assert second.exit_code == 0, second.output[-3000:]
    assert [path.name for path in (places.tmp / "rep" / "images").iterdir()] == ["val-miss-01.jpg"]
    assert keep.read_text() == "mine"
    assert sorted(path.name for path in places.tmp.iterdir()) == [".rep.old", "rep"]


def test_predict_keeps_the_files_already_in_its_output_folder(places: Places) -> None:
    """A picture name that is taken (here by the user's own photo, and by a FIFO) gets the next free name."""
    out = places.tmp / "out"
    out.mkdir()
    (out / "demo.jpg").write_bytes(b"the user's photo")
    os.mkfifo(out / "demo_2.jpg")
    before = snapshot(out)
    outcome = run_cli(["predict", places.image, "the big red circle", "--checkpoint", places.checkpoint, "--json",
                       "--output-dir", out], places.tmp)  # fmt: skip
    assert outcome.exit_code == 0, outcome.output[-3000:]
    assert json.loads(outcome.stdout)["picture"] == str(out / "demo_3.jpg")
    assert changes(before, snapshot(out)) == [f"new: {out / 'demo_3.jpg'}"]


def test_a_run_directory_is_marked_as_simrec_s(trained_run: Path) -> None:
    """The mark that lets a later train or resume write into the folder."""
    assert json.loads((trained_run / "run.json").read_text())["format"] == "simrec-run-v1"


@pytest.mark.slow  # about 20 s: ONNX and OpenVINO exports, evaluated and timed twice
def test_benchmark_keeps_its_exports_in_a_folder_it_then_replaces_whole(places: Places) -> None:
    """--keep: the exports and their metadata side by side under names of their own (the ONNX file's metadata is not
    the IR's), listed in benchmark.json and named by the rows; a second benchmark replaces that folder whole."""
    kept = places.tmp / "kept"
    args = ["benchmark", places.checkpoint, "--data-root", places.data, "--device", "cpu", "--batch", "2"]
    first = run_cli([*args, "--formats", "onnx,openvino", "--keep", kept, "--json", places.tmp / "b.json"], places.tmp)
    assert first.exit_code == 0, first.output[-3000:]
    marker = json.loads((kept / "benchmark.json").read_text())
    assert sorted(path.name for path in kept.iterdir()) == sorted(["benchmark.json", *marker["files"]])
    assert {"model.onnx", "model.json", "model_openvino.xml", "model_openvino.bin"} <= set(marker["files"])
    assert json.loads((kept / "model.json").read_text())["format"] == "simrec-onnx-v2"
    rows = json.loads((places.tmp / "b.json").read_text())["rows"]
    assert {row["file"] for row in rows if row["format"] != "pytorch"} == {
        str(kept / "model.onnx"),
        str(kept / "model_openvino.xml"),
    }
    second = run_cli([*args, "--formats", "onnx", "--keep", kept], places.tmp)
    assert second.exit_code == 0, second.output[-3000:]
    assert sorted(path.name for path in kept.iterdir()) == ["benchmark.json", "model.json", "model.onnx"]
    assert sorted(path.name for path in places.tmp.iterdir()) == ["b.json", "kept"]
