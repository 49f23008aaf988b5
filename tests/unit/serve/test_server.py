"""The server's start-up and its guards: binding (the hint fits the cause), who is told that others can reach it
(again after the address, when there is no token), what a `--workers` process does when its model cannot load,
the token parser, and files named by path (regular files only, bounded)."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path

import pytest

from simrec_cli.errors import SimrecError
from simrec_cli.reporting import NullReporter
from simrec_cli.serve import server
from simrec_cli.serve.auth import presented_token
from simrec_cli.serve.options import ServeOptions
from simrec_cli.serve.problems import RequestProblem
from simrec_cli.serve.server_files import read_server_file

TOKEN = "0123456789abcdef0123"
DESCRIBED = {"runtime": "torch eager", "compiled_batch_sizes": []}


def test_a_taken_port_and_an_unusable_host_get_their_own_hints() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(SimrecError, match="Address already in use") as port_error:
            server.bind("127.0.0.1", taken.getsockname()[1])
    assert port_error.value.hint is not None and "--port" in port_error.value.hint
    with pytest.raises(SimrecError, match=r"cannot listen on 203\.0\.113\.7:0") as host_error:
        server.bind("203.0.113.7", 0)  # TEST-NET-3: no machine has it
    assert host_error.value.hint == server.HOST_HINT
    with pytest.raises(SimrecError, match=r"\(300 characters\)") as long_error:
        server.bind("h" * 300, 0)
    assert len(str(long_error.value)) < 300


@pytest.mark.parametrize(
    ("host", "api_key", "warnings", "infos"),
    [
        ("0.0.0.0", None, 2, 0),  # before loading, and again as the last line of the announcement
        ("0.0.0.0", TOKEN, 0, 1),
        ("127.0.0.1", None, 0, 0),
        ("localhost", None, 0, 0),
    ],
)
def test_who_can_reach_the_server_is_said_and_repeated_without_a_token(
    tmp_path: Path, host: str, api_key: str | None, warnings: int, infos: int
) -> None:
    model = tmp_path / "model.pth"
    model.write_bytes(b"")
    options = ServeOptions(model_path=model, host=host, api_key=api_key)
    reporter = NullReporter()
    server._warn_about_exposure(options, reporter)
    server._announce(reporter, options, 8000, DESCRIBED)
    assert len(reporter.warnings) == warnings
    assert all("no API token" in warning and "SIMREC_API_KEY" in warning for warning in reporter.warnings)
    assert sum("needs the API token" in message for message in reporter.messages) == infos
    assert any("(eager forward)" in message for message in reporter.messages)


def test_the_announcement_names_the_runtime_of_an_exported_file(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"")
    reporter = NullReporter()
    described = {"runtime": "onnxruntime (CPUExecutionProvider)", "compiled_batch_sizes": []}
    server._announce(reporter, ServeOptions(model_path=model), 8000, described)
    assert "(onnxruntime (CPUExecutionProvider))" in reporter.messages[0]
    assert "eager" not in reporter.messages[0]


def test_a_worker_that_cannot_load_its_model_stops_instead_of_restarting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn restarts a worker that dies, unless it exits with its start-up failure status; the error is left
    for the parent to print as its one line."""
    model = tmp_path / "model.pth"
    model.write_text("not a checkpoint")
    error_file = tmp_path / "error.json"
    options = {"model_path": str(model), "workers": 2, "port": 8000, "device": "cpu"}
    monkeypatch.setenv(server.OPTIONS_ENVIRONMENT, json.dumps(options))
    monkeypatch.setenv(server.WORKER_ERROR_ENVIRONMENT, str(error_file))
    with pytest.raises(SystemExit) as exited:
        server.app_from_environment()
    assert exited.value.code == server.STARTUP_FAILURE
    assert "model.pth is not a readable checkpoint" in json.loads(error_file.read_text())["message"]


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        (b"Bearer abc", b"abc"),
        (b"bearer   abc ", b"abc"),
        (b"Bearer", None),
        (b"Basic " + base64.b64encode(b"anyone:abc"), b"abc"),
        (b"Basic " + base64.b64encode(b"no colon"), None),
        (b"Basic ***", None),
        (b"Digest abc", None),
    ],
)
def test_the_token_is_read_from_bearer_or_basic_credentials(header: bytes | None, token: bytes | None) -> None:
    assert presented_token(header) == token


def test_files_by_path_are_regular_files_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = tmp_path / "image.png"
    image.write_bytes(b"pixels")
    assert read_server_file(image, 100) == b"pixels"
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    listening = socket.socket(socket.AF_UNIX)
    monkeypatch.chdir(tmp_path)  # a socket's path is limited to about 100 characters: bind it by its short name
    listening.bind("sock")
    cases = {
        tmp_path / "gone.png": ("image_not_found", "does not exist"),
        loop: ("image_unreadable", "symbolic links"),
        tmp_path / "sock": ("not_a_file", "is a socket"),
        image: ("file_too_large", "more than"),
    }
    try:
        for path, (code, says) in cases.items():
            with pytest.raises(RequestProblem) as refused:
                read_server_file(path, 3)
            assert (refused.value.code, refused.value.status, refused.value.field) == (code, 422, "image_path")
            assert says in refused.value.detail
    finally:
        listening.close()


def test_the_open_file_limit_is_raised_to_hold_the_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the open-file limit accept() fails and the server takes no one; the cap must come first."""
    limits = {"now": (256, 4096)}
    monkeypatch.setattr(server.resource, "getrlimit", lambda _: limits["now"])
    monkeypatch.setattr(server.resource, "setrlimit", lambda _, value: limits.update(now=value))
    server.make_room_for_connections(100)  # 228 files fit in 256
    assert limits["now"] == (256, 4096)
    server.make_room_for_connections(512)
    assert limits["now"] == (512 + server.FILES_BESIDE_CONNECTIONS, 4096)
    limits["now"] = (256, 300)
    with pytest.raises(SimrecError, match="needs 640 open files, and this process may open at most 300") as refused:
        server.make_room_for_connections(512)
    assert refused.value.hint is not None and "--max-connections 172 or less" in refused.value.hint
