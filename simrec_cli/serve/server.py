"""Run the application under uvicorn: bind, print the address, serve until SIGTERM or Ctrl-C, drain, exit 0.

The socket is bound here rather than by uvicorn so that a taken port is one clear error, and so that
`--port 0` (any free port) prints the port it got. On SIGTERM or Ctrl-C uvicorn stops accepting connections,
answers the requests in flight (the batcher finishes its queue), and the command returns normally.
With `--workers N`, N processes share the socket, each with its own model and batcher.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from simrec_cli.errors import SimrecError
from simrec_cli.reporting import NullReporter, Reporter
from simrec_cli.serve.app import create_app
from simrec_cli.serve.model import load_model
from simrec_cli.serve.options import ServeOptions

OPTIONS_ENVIRONMENT = "SIMREC_SERVE_OPTIONS"  # how --workers hands the options to each worker process
GRACE_S = 5.0  # extra time past the request timeout for in-flight answers to leave on shutdown


def serve(options: ServeOptions, reporter: Reporter | None = None, access_log: bool = False) -> None:
    """Load the model, serve until told to stop, then return once every request in flight is answered."""
    reporter = reporter or NullReporter()
    if options.listens_beyond_this_machine:
        reporter.warning(f"listening on {options.host}: other machines can reach this server; it has no authentication")
    if options.workers > 1:
        _serve_workers(options, reporter, access_log)
        return
    sock = bind(options.host, options.port)
    port = sock.getsockname()[1]
    app = create_app(load_model(options, reporter), options)
    app.state.service.start()  # compiles with --compile; a failure is one error line, before uvicorn starts
    server = _AnnouncingServer(_config(app, options, access_log), lambda: _announce(reporter, options, port))
    with _signals_end_quietly():
        server.run(sockets=[sock])
    reporter.info("stopped: every request in flight was answered")


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to host:port; a taken port or an unknown host is a SimrecError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        hint = "pick another --port, or stop the other server" if port else "check --host"
        raise SimrecError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", hint) from exc
    sock.set_inheritable(True)
    return sock


def _config(app: Any, options: ServeOptions, access_log: bool, **extra: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_level="info" if access_log else "warning",
        access_log=access_log,
        timeout_graceful_shutdown=int(options.timeout_s + GRACE_S),
        **extra,
    )


def _announce(reporter: Reporter, options: ServeOptions, port: int) -> None:
    url = options.url(port)
    sizes = options.compile_batch_sizes
    forward = f"compiled forward for batch sizes {', '.join(map(str, sizes))}" if sizes else "eager forward"
    reporter.info(f"serving {options.model_path} ({forward}); Ctrl-C or SIGTERM stops it")
    reporter.info(f"open {url} (API docs: {url}docs)")


class _AnnouncingServer(uvicorn.Server):
    """uvicorn's server, calling `on_started` once it accepts connections."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_started()


@contextmanager
def _signals_end_quietly() -> Iterator[None]:
    """uvicorn re-raises the signal that stopped it; after a graceful shutdown that should end nothing."""
    stopping = [signal.SIGTERM, signal.SIGINT]
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in stopping}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve_workers(options: ServeOptions, reporter: Reporter, access_log: bool) -> None:
    """N uvicorn worker processes on one port, each loading the model itself (options passed by environment)."""
    if options.port == 0:
        raise SimrecError("--workers needs a fixed --port", "give a port, e.g. --port 8000")
    bind(options.host, options.port).close()  # a taken port is one clear error before any worker starts
    os.environ[OPTIONS_ENVIRONMENT] = json.dumps({**dataclasses.asdict(options), "model_path": str(options.model_path)})
    _announce(reporter, options, options.port)
    with _signals_end_quietly():
        uvicorn.run(
            f"{__name__}:app_from_environment",
            factory=True,
            host=options.host,
            port=options.port,
            workers=options.workers,
            log_level="info" if access_log else "warning",
            access_log=access_log,
            timeout_graceful_shutdown=int(options.timeout_s + GRACE_S),
        )
    reporter.info("stopped: every request in flight was answered")


def app_from_environment() -> FastAPI:
    """The app of one `--workers` process: the options come from the parent through the environment."""
    import torch

    values = json.loads(os.environ[OPTIONS_ENVIRONMENT])
    options = ServeOptions(**{**values, "model_path": Path(values["model_path"])})
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // options.workers))
    return create_app(load_model(options), options)
