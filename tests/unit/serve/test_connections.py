"""The connection cap, on real sockets: the server (uvicorn with the server's own connection class, in a thread of
this process, on 127.0.0.1) holds `--max-connections` open connections; a request on one beyond gets 503 with
Retry-After at once (a body it sent is read first, so the client sees the answer, not a reset), a health check is
still answered, no thread is started for the refused, and once a connection closes the next is served."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from simrec_cli.serve import server
from simrec_cli.serve.app import create_app
from simrec_cli.serve.model import load_model
from simrec_cli.serve.options import ServeOptions

MAX_CONNECTIONS = 3
QUICK_S = 3.0  # a refusal comes at once; this only bounds a test on a loaded machine
REFUSED_AT_ONCE = 30


@pytest.fixture(scope="module")
def address(tiny_checkpoint: Path) -> Iterator[tuple[str, int]]:
    """A server capped at MAX_CONNECTIONS, whose header deadline is long enough to hold idle connections."""
    options = ServeOptions(model_path=tiny_checkpoint, device="cpu", precision="fp32", port=0,
                           max_connections=MAX_CONNECTIONS, header_timeout_s=60, timeout_s=5)  # fmt: skip
    sock = server.bind("127.0.0.1", 0)
    running = uvicorn.Server(server._config(create_app(load_model(options), options), options, access_log=False))
    thread = threading.Thread(target=running.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not running.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield sock.getsockname()[:2]
    finally:
        running.should_exit = True
        thread.join(30)
        sock.close()


def connect(address: tuple[str, int]) -> socket.socket:
    return socket.create_connection(address, timeout=QUICK_S)


def exchange(address: tuple[str, int], request: bytes) -> tuple[bytes, dict[str, str], bytes, float]:
    """Send `request` on a new connection and read until the server closes it: status line, headers, body, seconds."""
    started = time.monotonic()
    with connect(address) as connection:
        connection.sendall(request)
        received = b""
        while part := connection.recv(65536):
            received += part
    head, _, body = received.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return status.encode(), headers, body, time.monotonic() - started


def request(method: str, path: str, body: bytes = b"") -> bytes:
    """A request asking the server to close the connection after its answer."""
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def wait_until_served(address: tuple[str, int]) -> bytes:
    """GET /info until it is answered 200 (the server notices a closed connection a moment after the close)."""
    deadline = time.monotonic() + QUICK_S
    while True:
        status, *_ = exchange(address, request("GET", "/info"))
        if b" 200 " in status or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def test_connections_beyond_the_cap_get_503_at_once(address: tuple[str, int]) -> None:
    held = [connect(address) for _ in range(MAX_CONNECTIONS)]  # idle: they send nothing
    try:
        time.sleep(0.2)  # accepted and counted
        status, headers, body, seconds = exchange(address, request("GET", "/info"))
        assert status.startswith(b"HTTP/1.1 503 ") and seconds < QUICK_S, (status, seconds)
        assert headers["retry-after"] == "1" and headers["connection"] == "close"
        refusal = json.loads(body)
        assert refusal["error"] == "too_many_connections" and f"{MAX_CONNECTIONS:,} connections" in refusal["detail"]

        upload = json.dumps({"image": "A" * 200_000, "expression": "the dog"}).encode()  # more than a socket buffer
        status, _, body, seconds = exchange(address, request("POST", "/predict", upload))
        assert status.startswith(b"HTTP/1.1 503 ") and json.loads(body)["error"] == "too_many_connections"
        assert seconds < QUICK_S

        status, headers, body, _ = exchange(address, request("GET", "/health"))
        assert status.startswith(b"HTTP/1.1 200 ") and json.loads(body) == {"status": "ok"}
        assert headers["connection"] == "close"

        threads = threading.active_count()
        with_refusals = [connect(address) for _ in range(REFUSED_AT_ONCE)]
        started = time.monotonic()
        for connection in with_refusals:
            connection.sendall(request("GET", "/metrics"))
        answers = [connection.recv(65536) for connection in with_refusals]
        for connection in with_refusals:
            connection.close()
        assert all(answer.startswith(b"HTTP/1.1 503 ") for answer in answers)
        assert time.monotonic() - started < QUICK_S
        assert threading.active_count() <= threads + 1  # uvicorn serves them on its event loop, no thread each
    finally:
        held.pop().close()
    try:
        assert wait_until_served(address).startswith(b"HTTP/1.1 200 ")
    finally:
        for connection in held:
            connection.close()
