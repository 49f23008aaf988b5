"""A `simrec serve` process for tests: started on a free localhost port, stopped with SIGTERM afterwards."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

URL_PATTERN = re.compile(r"http://127\.0\.0\.1:\d+/")
START_TIMEOUT_S = 90
STOP_TIMEOUT_S = 60


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen
    output: list[str] = field(default_factory=list)

    def stop(self) -> int:
        """SIGTERM, then the exit status (the process is killed if it does not stop in time)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError("the server did not stop within a minute of SIGTERM") from None

    @property
    def log(self) -> str:
        return "".join(self.output)


@contextmanager
def running_server(
    model: Path,
    *options: str,
    port: int = 0,
    start_timeout_s: float = START_TIMEOUT_S,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[ServerProcess]:
    """`simrec serve MODEL --port PORT OPTIONS...` on 127.0.0.1 (any free port by default), in `cwd` with `env`
    added to the environment, answering /health within `start_timeout_s` (longer with --compile); always stopped
    afterwards."""
    command = [sys.executable, "-m", "simrec_cli", "serve", str(model), "--port", str(port), *options]
    environment = {**os.environ, "COLUMNS": "200", **(env or {})}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment,
                               cwd=cwd)  # fmt: skip
    output: list[str] = []
    found = threading.Event()
    reader = threading.Thread(target=_read_lines, args=(process, output, found), daemon=True)
    reader.start()
    deadline = time.monotonic() + start_timeout_s
    while not found.wait(0.2):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise AssertionError(f"the server did not start: {''.join(output)}")
    match = URL_PATTERN.search("".join(output))
    assert match is not None
    server = ServerProcess(match.group(0), process, output)
    try:
        _wait_until_healthy(server, deadline)
        yield server
    finally:
        if process.poll() is None:
            server.stop()
        reader.join(5)


def _wait_until_healthy(server: ServerProcess, deadline: float) -> None:
    """Worker processes may still be loading the model when the address is printed."""
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{server.url}health", timeout=5).status_code == 200:
                return
        assert server.process.poll() is None and time.monotonic() < deadline, f"not healthy: {server.log}"
        time.sleep(0.2)


def _read_lines(process: subprocess.Popen, output: list[str], found: threading.Event) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)
        if URL_PATTERN.search(line):
            found.set()
