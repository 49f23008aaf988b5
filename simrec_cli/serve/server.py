"""Run the application under uvicorn: bind, load, print the address, serve until SIGTERM or Ctrl-C, drain, exit 0.

The socket is bound here, first, rather than by uvicorn: an unusable host or a taken port is one clear error
before anything is loaded or announced, and `--port 0` (any free port) prints the port it got. The model is
loaded before the server says it is serving, also with `--workers N`, so a bad checkpoint is one error line, not
N crashing workers. On SIGTERM or Ctrl-C uvicorn stops accepting connections, answers the requests in flight
(the batcher finishes its queue), and the command returns normally. With `--workers N`, N processes share the
socket, each with its own model and batcher.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import json
import logging
import os
import resource
import signal
import socket
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from simrec_cli.errors import SimrecError, quoted
from simrec_cli.reporting import NullReporter, Reporter
from simrec_cli.serve.app import create_app
from simrec_cli.serve.connections import GuardedConnection
from simrec_cli.serve.model import load_model
from simrec_cli.serve.options import API_KEY_ENVIRONMENT, ServeOptions

OPTIONS_ENVIRONMENT = "SIMREC_SERVE_OPTIONS"  # how --workers hands the options to each worker process
WORKER_ERROR_ENVIRONMENT = "SIMREC_SERVE_WORKER_ERROR"  # where a worker that cannot start leaves its error
GRACE_S = 5.0  # extra time past the request timeout for in-flight answers to leave on shutdown
# Files a server holds besides its connections: libraries, pipes, its socket, and the images read by path at once.
FILES_BESIDE_CONNECTIONS = 128
HOST_HINT = "check --host: give an address of this machine, e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (all)"


def serve(options: ServeOptions, reporter: Reporter | None = None, access_log: bool = False) -> None:
    """Load the model, serve until told to stop, then return once every request in flight is answered."""
    reporter = reporter or NullReporter()
    make_room_for_connections(options.max_connections)
    sock = bind(options.host, options.port)
    try:
        _warn_about_exposure(options, reporter)
        if options.workers > 1:
            _serve_workers(options, sock, reporter, access_log)
        else:
            _serve_one(options, sock, reporter, access_log)
    finally:
        sock.close()
    reporter.info("stopped: every request in flight was answered")


def make_room_for_connections(max_connections: int) -> None:
    """Raise this process's limit of open files (its soft limit, up to the hard one) so that --max-connections
    connections fit beside the files a server holds; past the hard limit, accept() would fail and the server stop
    taking anyone before the cap could answer 503."""
    needed = max_connections + FILES_BESIDE_CONNECTIONS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SimrecError(
            f"--max-connections {max_connections:,} needs {needed:,} open files, and this process may open at most "
            f"{hard:,}",
            f"give --max-connections {max(1, hard - FILES_BESIDE_CONNECTIONS):,} or less, or raise the limit (ulimit "
            "-Hn)",
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to host:port; an unusable host or a taken port is a SimrecError whose hint fits the cause."""
    shown = f"{quoted(host) if len(host) > 60 or not host.isprintable() else host}:{port}"
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    except OSError as exc:  # an IPv6 address on a machine without IPv6
        raise SimrecError(f"cannot listen on {shown}: {exc.strerror or exc}", HOST_HINT) from exc
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except (OSError, ValueError, TypeError) as exc:  # the others: a host no resolver can even look up (a NUL)
        sock.close()
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a host name or address"
        raise SimrecError(f"cannot listen on {shown}: {reason}", _bind_hint(exc, port)) from exc
    sock.set_inheritable(True)
    return sock


def _bind_hint(error: Exception, port: int) -> str:
    if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
        return "pick another --port, or stop the other server"
    if isinstance(error, OSError) and error.errno == errno.EACCES and port:
        return "ports below 1024 need root: pick --port 1024 or above"
    return HOST_HINT


def _warn_about_exposure(options: ServeOptions, reporter: Reporter) -> None:
    """Say who can reach the server: other machines, with or without the API token."""
    if not options.listens_beyond_this_machine:
        return
    if options.api_key is None:
        reporter.warning(_unprotected(options))
    else:
        reporter.info(
            f"listening on {options.host}: other machines can reach this server; every route but /health needs the "
            "API token (the connection is not encrypted: put a TLS proxy in front of it beyond a trusted network)"
        )


def _unprotected(options: ServeOptions) -> str:
    return (
        f"listening on {options.host}: other machines can reach this server, and it has no API token; give "
        f"--api-key or set {API_KEY_ENVIRONMENT} to require one"
    )


def _serve_one(options: ServeOptions, sock: socket.socket, reporter: Reporter, access_log: bool) -> None:
    model = load_model(options, reporter)
    app = create_app(model, options)
    app.state.service.start()  # compiles with --compile; a failure is one error line, before uvicorn starts
    port = sock.getsockname()[1]
    announce = functools.partial(_announce, reporter, options, port, model.describe())
    server = _AnnouncingServer(_config(app, options, access_log), announce)
    with _signals_end_quietly():
        server.run(sockets=[sock])


def _config(app: Any, options: ServeOptions, access_log: bool, **extra: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        http=functools.partial(  # type: ignore[arg-type]
            GuardedConnection,
            header_timeout_s=options.header_timeout_s,
            max_connections=options.max_connections,
            drain_timeout_s=options.timeout_s,
        ),
        log_level="info" if access_log else "warning",
        access_log=access_log,
        timeout_graceful_shutdown=int(options.timeout_s + GRACE_S),
        **extra,
    )


def _announce(reporter: Reporter, options: ServeOptions, port: int, described: dict[str, Any]) -> None:
    url = options.url(port)
    reporter.info(f"serving {options.model_path} ({_forward(described)}); Ctrl-C or SIGTERM stops it")
    reporter.info(f"open {url} (API docs: {url}docs)")
    if options.listens_beyond_this_machine and options.api_key is None:
        reporter.warning(_unprotected(options))  # again, where it is seen: the last line before the requests


def _forward(described: dict[str, Any]) -> str:
    """What runs the model: PyTorch's eager or compiled forward, or the runtime of an exported file."""
    sizes = described["compiled_batch_sizes"]
    if sizes:
        return f"compiled forward for batch sizes {', '.join(map(str, sizes))}"
    return "eager forward" if described["runtime"].startswith("torch") else described["runtime"]


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


def _serve_workers(options: ServeOptions, sock: socket.socket, reporter: Reporter, access_log: bool) -> None:
    """N uvicorn worker processes on one socket, each loading the model itself (options passed by environment).

    The model is loaded here first, so that a file no worker could load is one error line before any starts. A
    worker that still cannot start (the file changed since) leaves its error in a file and exits with uvicorn's
    start-up failure status, which stops the others instead of restarting it forever; it is reported here."""
    described = load_model(options, reporter).describe()
    with tempfile.TemporaryDirectory(prefix="simrec-serve-") as folder:
        error_file = Path(folder) / "worker-error.json"
        values = {**dataclasses.asdict(options), "model_path": str(options.model_path)}
        os.environ[OPTIONS_ENVIRONMENT] = json.dumps(values)
        os.environ[WORKER_ERROR_ENVIRONMENT] = str(error_file)
        config = _config(f"{__name__}:app_from_environment", options, access_log, factory=True, workers=options.workers)
        _announce(reporter, options, options.port, described)
        with _signals_end_quietly(), _supervisor_errors_left_to_us():
            supervisor = Multiprocess(config, sockets=[sock])
            supervisor.run()
        if error_file.exists():
            raise SimrecError(**json.loads(error_file.read_text()))
        if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
            raise SimrecError("a worker process failed to start (its error is above)", "serve without --workers")


@contextmanager
def _supervisor_errors_left_to_us() -> Iterator[None]:
    """uvicorn's supervisor logs an error when a worker fails to start; the worker's own error is reported instead."""
    supervisor_log = logging.getLogger("uvicorn.error")
    below_errors = logging.Filter()
    below_errors.filter = lambda record: record.levelno < logging.ERROR  # type: ignore[method-assign]
    supervisor_log.addFilter(below_errors)
    try:
        yield
    finally:
        supervisor_log.removeFilter(below_errors)


def app_from_environment() -> FastAPI:
    """The app of one `--workers` process: the options come from the parent through the environment."""
    import torch

    values = json.loads(os.environ[OPTIONS_ENVIRONMENT])
    options = ServeOptions(**{**values, "model_path": Path(values["model_path"])})
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // options.workers))
    try:
        return create_app(load_model(options), options)
    except SimrecError as exc:
        Path(os.environ[WORKER_ERROR_ENVIRONMENT]).write_text(json.dumps({"message": exc.message, "hint": exc.hint}))
    except Exception:  # a bug: its traceback is worth reading, once, not in a loop of restarts
        traceback.print_exc()
    sys.exit(STARTUP_FAILURE)
