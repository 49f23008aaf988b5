"""Bad-input catalogue, HTTP edge cases: what a hostile or careless client sends a real `simrec serve` process.

One server (on 127.0.0.1, an API token, `--allow-paths`, small limits) answers every row. A row is one request and
the refusal it must get: its status, its error code and field, a `detail` short enough to read (a 5,000-character
path is not quoted whole), and nothing at all in the server's log (no traceback, no library's warning). The rows
that need real sockets follow: connections that never finish their headers, a stalled upload, a client that hangs
up mid-body. Stopping the server with SIGTERM afterwards must end it at once (a FIFO once held a thread forever).
"""

from __future__ import annotations

import base64
import io
import itertools
import os
import select
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.serving import ServerProcess, running_server
from tests.unit.predict.checkpoints import tiny_settings, write_checkpoint

TOKEN = "catalogue-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HEADER_TIMEOUT_S = 1.0
TIMEOUT_S = 2.0
MAX_BODY_MB = 1
MAX_DETAIL = 300  # characters: a sentence, never a dump of what was sent
STOP_LIMIT_S = 15.0
SLOW_CONNECTIONS = 200


def png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


PNG = png()
B64 = base64.b64encode(PNG).decode()
WRAPPED_B64 = base64.encodebytes(PNG).decode().replace("\n", "\\n")  # as `base64` writes it, 76 to a line


EXPRESSION_PART = b'Content-Disposition: form-data; name="expression"'


def multipart(part_headers: bytes, value: bytes, charset: str = "") -> tuple[bytes, dict[str, str]]:
    body = b"--b\r\n" + part_headers + b"\r\n\r\n" + value + b"\r\n--b--\r\n"
    return body, {"content-type": f"multipart/form-data; boundary=b{charset}"}


def as_json(text: str) -> tuple[bytes, dict[str, str]]:
    """A JSON body as written (escapes such as \\ud800 stay as the client typed them)."""
    return text.encode(), {"content-type": "application/json"}


@dataclass(frozen=True)
class Exchange:
    """One request to the catalogue's server and the refusal (or answer) it must get."""

    id: str
    status: int
    error: str | None  # the `error` code of the JSON body; None for an answer
    request: tuple[bytes, dict[str, str]] = (b"", {})
    method: str = "POST"
    path: str = "/predict"
    field: str | None = None
    says: str = ""
    token: str | None = TOKEN
    check: Callable[[httpx.Response], object] | None = None

    def param(self) -> object:
        return pytest.param(self, id=self.id)


def _path_json(path: str) -> tuple[bytes, dict[str, str]]:
    return as_json(f'{{"image_path": "{path}", "expression": "the red circle"}}')


def _answers(response: httpx.Response) -> None:
    assert [record["expression"] for record in response.json()["results"]] == ["the red circle"]


def _names_the_file_only(response: httpx.Response) -> None:
    assert response.json()["file"] == "tiny.pth"


def _names_the_methods(response: httpx.Response) -> None:
    assert response.headers["allow"] == "POST"


def _challenges(response: httpx.Response) -> None:
    assert response.headers["www-authenticate"].startswith("Bearer")


EXCHANGES = [
    Exchange("JSON integer of 5,000 digits", 400, "invalid_json",
             as_json('{"image": "", "expression": "x", "masks": ' + "7" * 5000 + "}"), says="5,000 digits"),
    Exchange("lone surrogate in an expression", 400, "invalid_text",
             as_json(f'{{"image": "{B64}", "expression": "the \\ud800 circle"}}'), field="expression"),
    Exchange("lone surrogate in a field name", 400, "invalid_text", as_json('{"\\udfff": 1}')),
    Exchange("lone surrogate in image_path", 400, "invalid_text", _path_json("a\\ud800.png"), field="image_path"),
    Exchange("lone surrogate in a multipart field (charset unicode_escape)", 400, "invalid_text",
             multipart(EXPRESSION_PART, b"the \\ud800 dog", "; charset=unicode_escape"), field="expression"),
    Exchange("NUL byte in image_path", 422, "bad_path", _path_json("image.png\\u0000.txt"), field="image_path",
             says="NUL"),
    Exchange("image_path names a FIFO", 422, "not_a_file", _path_json("pipe"), field="image_path", says="FIFO"),
    Exchange("image_path names a device", 422, "not_a_file", _path_json("/dev/zero"), field="image_path",
             says="device"),
    Exchange("image_path names a folder", 422, "not_a_file", _path_json("folder"), field="image_path",
             says="folder"),
    Exchange("image_path larger than --max-body-mb", 422, "file_too_large", _path_json("large.png"),
             field="image_path", says="--max-body-mb"),
    Exchange("image_path of 5,000 characters", 422, "image_unreadable", _path_json("a" * 5000),
             field="image_path", says="5,000 characters"),
    Exchange("image_path names a regular image", 200, None, _path_json("image.png"), check=_answers),
    Exchange("base64 wrapped over lines", 200, None,
             as_json(f'{{"image": "{WRAPPED_B64}", "expression": "the red circle"}}'), check=_answers),
    Exchange("base64 with a letter that is not base64", 400, "bad_base64",
             as_json('{"image": "iVBO*w0KGgo=", "expression": "x"}'), field="image", says="base64 -w0"),
    Exchange("multipart part header with a bare CR", 400, "bad_form",
             multipart(EXPRESSION_PART + b"\rX", b"the dog")),
    Exchange("JSON nested 100,000 deep", 400, "invalid_json", as_json("[" * 100_000 + "]" * 100_000)),
    Exchange("JSON infinity as the mask format", 422, "bad_value",
             as_json('{"image": "", "expression": "x", "masks": 1e999}'), field="masks"),
    Exchange("text/plain body of 5,000 characters of content type", 415, "unsupported_media_type",
             (b"x", {"content-type": "text/" + "p" * 5000})),
    Exchange("no token", 401, "unauthorized", as_json('{"expression": "x"}'), token=None, check=_challenges),
    Exchange("wrong token", 401, "unauthorized", as_json('{"expression": "x"}'), token=TOKEN[:-1] + "?",
             says="wrong"),
    Exchange("no token for /info", 401, "unauthorized", method="GET", path="/info", token=None),
    Exchange("health without a token", 200, None, method="GET", path="/health", token=None),
    Exchange("info names the model file, not its folder", 200, None, method="GET", path="/info",
             check=_names_the_file_only),
    Exchange("DELETE /predict", 405, "method_not_allowed", method="DELETE", check=_names_the_methods),
    Exchange("unknown path", 404, "not_found", method="GET", path="/admin"),
]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The catalogue's server, in a folder holding the files the rows name by path."""
    folder = tmp_path_factory.mktemp("http-catalogue")
    checkpoint = write_checkpoint(folder / "tiny.pth", tiny_settings())
    (folder / "image.png").write_bytes(PNG)
    (folder / "large.png").write_bytes(PNG + bytes(MAX_BODY_MB * 1024 * 1024))
    (folder / "folder").mkdir()
    os.mkfifo(folder / "pipe")
    options = ("--device", "cpu", "--precision", "fp32", "--allow-paths", "--max-body-mb", str(MAX_BODY_MB),
               "--timeout-s", str(TIMEOUT_S), "--header-timeout-s", str(HEADER_TIMEOUT_S))  # fmt: skip
    with running_server(checkpoint, *options, cwd=folder, env={"SIMREC_API_KEY": TOKEN}) as running:
        yield running
        started = time.monotonic()
        assert running.stop() == 0, running.log
        assert time.monotonic() - started < STOP_LIMIT_S
    assert "every request in flight was answered" in running.log


def quiet_while(server: ServerProcess, action: Callable[[], object]) -> object:
    """Run `action`; the server must print nothing meanwhile (no traceback, no library's message)."""
    before = len(server.log)
    result = action()
    time.sleep(0.05)  # what the server prints about a request reaches the pipe just after its answer
    assert server.log[before:] == "", server.log[before:]
    return result


@pytest.mark.parametrize("exchange", [exchange.param() for exchange in EXCHANGES])
def test_http_edge_case(server: ServerProcess, exchange: Exchange) -> None:
    content, headers = exchange.request
    headers = {**headers, **({"Authorization": f"Bearer {exchange.token}"} if exchange.token else {})}

    def send() -> httpx.Response:
        return httpx.request(exchange.method, f"{server.url}{exchange.path.lstrip('/')}", content=content,
                             headers=headers, timeout=30)  # fmt: skip

    response = quiet_while(server, send)
    assert isinstance(response, httpx.Response)
    assert response.status_code == exchange.status, response.text[:2000]
    if exchange.error is not None:
        body = response.json()
        assert body["error"] == exchange.error, body
        assert body["field"] == exchange.field, body
        assert len(body["detail"]) <= MAX_DETAIL, body["detail"]
        assert exchange.says in body["detail"], body["detail"]
    if exchange.check is not None:
        exchange.check(response)


def raw_connection(server: ServerProcess) -> socket.socket:
    url = httpx.URL(server.url)
    return socket.create_connection((url.host, url.port), timeout=10)


def read_until_closed(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a socket timeout fails the test)."""
    received = b""
    while part := connection.recv(65536):
        received += part
    return received


def upload_head(length: int) -> bytes:
    return (f"POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n").encode()  # fmt: skip


def drip_until_answered(connection: socket.socket, limit_s: float) -> tuple[bytes, float]:
    """Send a request line, then header lines one byte at a time, until the server answers; the answer and when."""
    started = time.monotonic()
    for byte in itertools.chain(b"GET /info HTTP/1.1\r\n", itertools.cycle(b"X-Slow: y\r\n")):
        if select.select([connection], [], [], HEADER_TIMEOUT_S / 10)[0]:
            return read_until_closed(connection), time.monotonic() - started
        assert time.monotonic() - started < limit_s, "the dripping connection was never closed"
        connection.send(bytes([byte]))
    raise AssertionError("unreachable: the bytes above never end")


def test_connections_that_never_finish_their_headers_are_closed(server: ServerProcess) -> None:
    """Hundreds of connections that send part of their headers, or nothing, and one that keeps sending header lines
    a byte at a time: each gets 408 and is closed after --header-timeout-s; the server answers others meanwhile."""
    connections = [raw_connection(server) for _ in range(SLOW_CONNECTIONS)]
    started = time.monotonic()
    for number, connection in enumerate(connections):
        if number % 2:
            connection.sendall(b"GET /info HTTP/1.1\r\nHost: x\r\n")  # the blank line never comes
    with raw_connection(server) as dripping:
        dripped, closed_after = drip_until_answered(dripping, limit_s=HEADER_TIMEOUT_S * 4)
    assert httpx.get(f"{server.url}health", timeout=10).status_code == 200
    answers = [read_until_closed(connection) for connection in connections]
    elapsed = time.monotonic() - started
    for connection in connections:
        connection.close()
    assert all(answer.startswith(b"HTTP/1.1 408 ") and b"header_timeout" in answer for answer in [dripped, *answers])
    assert closed_after < HEADER_TIMEOUT_S * 2 and elapsed < HEADER_TIMEOUT_S + 8, (closed_after, elapsed)


def test_a_client_still_sending_when_its_headers_time_out_reads_its_408(server: ServerProcess) -> None:
    """A client that never stops sending header bytes still gets the whole 408 and an orderly close, not a reset
    (a socket closed with unread bytes is reset, and the reset can overtake the answer)."""
    with raw_connection(server) as connection:
        connection.sendall(b"GET /info HTTP/1.1\r\n")
        started = time.monotonic()
        while not select.select([connection], [], [], 0.005)[0]:
            assert time.monotonic() - started < HEADER_TIMEOUT_S * 4, "the connection was never answered"
            connection.sendall(b"X-Slow: y\r\n")
        answer = read_until_closed(connection)
        for _ in range(3):  # the server goes on reading for a while: late bytes are dropped, not answered by a reset
            connection.sendall(b"X-Slow: y\r\n")
            time.sleep(0.05)
    assert answer.startswith(b"HTTP/1.1 408 ") and b"header_timeout" in answer, answer[:300]


def test_a_stalled_upload_gets_408_naming_the_upload(server: ServerProcess) -> None:
    with raw_connection(server) as connection:
        connection.sendall(upload_head(1000) + b'{"image": "')
        answer = quiet_while(server, lambda: read_until_closed(connection))
    assert isinstance(answer, bytes)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:300]
    assert b'"body_timeout"' in answer and b"upload stalled" in answer


def test_a_stalled_upload_declared_too_large_gets_its_413_in_time(server: ServerProcess) -> None:
    """The rest of an oversized body is read before the 413 (so the client sees it), but not for longer than
    --timeout-s: a client that declares megabytes and sends none does not hold the connection."""
    started = time.monotonic()
    with raw_connection(server) as connection:
        connection.sendall(upload_head(2 * MAX_BODY_MB * 1024 * 1024) + b"{")
        answer = read_until_closed(connection)
    assert answer.startswith(b"HTTP/1.1 413 ") and b"body_too_large" in answer, answer[:300]
    assert time.monotonic() - started < TIMEOUT_S + 5


@pytest.mark.parametrize(
    ("sent", "status"),
    [
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n", b"400"),
        (b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", b"200"),
    ],
    ids=["not HTTP", "Content-Length not a number", "WebSocket upgrade"],
)
def test_what_is_not_an_http_request_gets_its_answer_and_the_log_stays_quiet(
    server: ServerProcess, sent: bytes, status: bytes
) -> None:
    def send() -> bytes:
        with raw_connection(server) as connection:
            connection.sendall(sent)
            return connection.recv(65536)

    answer = quiet_while(server, send)
    assert isinstance(answer, bytes) and answer.startswith(b"HTTP/1.1 " + status), answer[:300]
    if status == b"400":
        assert b'"error": "bad_http"' in answer


def test_a_client_that_hangs_up_mid_body_leaves_the_log_quiet(server: ServerProcess) -> None:
    def hang_up() -> None:
        with raw_connection(server) as connection:
            connection.sendall(upload_head(1000) + b'{"image": "')
        time.sleep(0.3)

    quiet_while(server, hang_up)
    assert httpx.get(f"{server.url}health", timeout=10).status_code == 200
