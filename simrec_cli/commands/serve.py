"""`simrec serve`: a web page and an HTTP API answering expressions with a trained model."""

from __future__ import annotations

from pathlib import Path

import typer

from simrec_cli.commands.common import (
    DEVICE_OPTION,
    HALF_OPTION,
    PRECISION_OPTION,
    RUNTIME_OPTION,
    chosen_precision,
    guarded,
)
from simrec_cli.console import RichReporter
from simrec_cli.errors import SimrecError
from simrec_cli.serve import options as defaults


@guarded
def command(
    model: Path = typer.Argument(
        ..., help="A best.pth from `simrec train`, or an .onnx or OpenVINO .xml file from `simrec export`."
    ),
    host: str = typer.Option(
        defaults.LOCALHOST,
        "--host",
        help="Address to listen on; 0.0.0.0 lets other machines connect (give them an --api-key to present).",
    ),
    port: int = typer.Option(defaults.DEFAULT_PORT, "--port", help="TCP port; 0 picks a free one."),
    device: str = DEVICE_OPTION,
    precision: str = PRECISION_OPTION,
    runtime: str = RUNTIME_OPTION,
    half: bool = HALF_OPTION,
    max_batch: int = typer.Option(
        defaults.DEFAULT_MAX_BATCH, "--max-batch", help="Most expressions answered by one forward pass."
    ),
    max_wait_ms: float = typer.Option(
        defaults.DEFAULT_MAX_WAIT_MS, "--max-wait-ms", help="How long a request waits for others to share its pass."
    ),
    queue_size: int = typer.Option(
        defaults.DEFAULT_QUEUE_SIZE, "--queue-size", help="Requests in progress at most; beyond, 503 + Retry-After."
    ),
    timeout_s: float = typer.Option(
        defaults.DEFAULT_TIMEOUT_S,
        "--timeout-s",
        help="Per-request limit: 408 when the body has not arrived by then, 504 when the answer has not.",
    ),
    header_timeout_s: float = typer.Option(
        defaults.DEFAULT_HEADER_TIMEOUT_S,
        "--header-timeout-s",
        help="A request's headers must arrive within this time, or its connection gets 408 and is closed.",
    ),
    max_connections: int = typer.Option(
        defaults.DEFAULT_MAX_CONNECTIONS,
        "--max-connections",
        help="Connections open at once at most (per worker process); a request on one beyond gets 503 with "
        "Retry-After at once, and the connection is closed.",
    ),
    max_body_mb: float = typer.Option(
        defaults.DEFAULT_MAX_BODY_MB, "--max-body-mb", help="Largest request body in MB (413 beyond)."
    ),
    max_pixels: int = typer.Option(defaults.DEFAULT_MAX_PIXELS, "--max-pixels", help="Largest image, width x height."),
    max_expressions: int = typer.Option(
        defaults.DEFAULT_MAX_EXPRESSIONS, "--max-expressions", help="Most expressions in one request."
    ),
    allow_paths: bool = typer.Option(
        False, "--allow-paths", help="Let JSON requests name image files on this machine (image_path)."
    ),
    api_key: str | None = typer.Option(
        None,
        "--api-key",
        envvar=defaults.API_KEY_ENVIRONMENT,
        show_envvar=True,
        help="A token every route but /health then requires: 'Authorization: Bearer TOKEN' (a browser asks for it as "
        "a password). Prefer the environment variable: other users of this machine can read command lines.",
    ),
    workers: int = typer.Option(1, "--workers", help="Server processes, each with its own model and batcher."),
    compile_forward: bool = typer.Option(
        False,
        "--compile",
        help="Compile the forward (torch.compile) for batch sizes 1, 4, 16, ... up to --max-batch before serving; a "
        "batch runs padded up to a size or split over smaller ones, whichever its measured pass times say is "
        "faster. Start-up takes a minute or more, for a modest gain on CPUs (measured on the benchmarks page of the "
        "docs). PyTorch only: implies --runtime torch.",
    ),
    access_log: bool = typer.Option(False, "--access-log", help="Log every request."),
) -> None:
    """Serve MODEL: a page at / (upload an image, type expressions), POST /predict, /health, /info, /metrics, /docs.

    Concurrent requests are answered together in batched forward passes. Stops cleanly on Ctrl-C or SIGTERM.
    Listens on 127.0.0.1 (this machine only) unless --host says otherwise.
    """
    from simrec_cli.serve.options import ServeOptions

    options = ServeOptions(
        model_path=model,
        host=host,
        port=port,
        device=device,
        precision=chosen_precision(precision, half),
        runtime=runtime,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        queue_size=queue_size,
        max_body_mb=max_body_mb,
        max_pixels=max_pixels,
        max_expressions=max_expressions,
        timeout_s=timeout_s,
        allow_paths=allow_paths,
        workers=workers,
        compile=compile_forward,
        api_key=api_key,
        header_timeout_s=header_timeout_s,
        max_connections=max_connections,
    )
    try:
        from simrec_cli.serve.server import serve
    except ImportError as exc:
        raise SimrecError(
            f"serving needs FastAPI and uvicorn ({exc.name} is missing)", 'pip install "simrec[serve]"'
        ) from exc
    serve(options, RichReporter(), access_log=access_log)
