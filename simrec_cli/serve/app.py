"""The FastAPI application: the page, `POST /predict`, `/health`, `/info`, `/metrics` and the API docs.

A prediction request is admitted only while fewer than `queue_size` are in progress (else 503 with
Retry-After), read and checked (4xx naming the problem), decoded in a worker thread, queued for the batcher,
and answered with the records of `simrec predict --json`; the whole request runs under `timeout_s`: 408 when its
body has not arrived by then (the client's upload stalled), 504 when the answer has not (the server's load).
With an API token, every route but /health needs it (401). Any unexpected failure becomes a 500 with a JSON body;
the server itself goes on.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from simrec_cli import __version__
from simrec_cli.errors import SimrecError, quoted
from simrec_cli.schemas.requests import MASK_FORMATS
from simrec_cli.serve import schema
from simrec_cli.serve.answers import answer_records
from simrec_cli.serve.auth import TokenGate
from simrec_cli.serve.batcher import Batcher, Job, RawAnswers
from simrec_cli.serve.inputs import PredictInput, RequestReader
from simrec_cli.serve.limits import BodyLimit
from simrec_cli.serve.metrics import CONTENT_TYPE, ServerMetrics
from simrec_cli.serve.model import ServedModel
from simrec_cli.serve.options import ServeOptions
from simrec_cli.serve.problems import RequestProblem
from simrec_cli.serve.server_files import read_server_file
from simrec_cli.serve.uploads import PreparedImage, header_pixels, prepare_image

PAGE_DIR = Path(__file__).parent / "page"
PAGE_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
DECODE_THREADS = 4  # images decoded at once: enough to keep the model fed, few enough to bound memory
# An image this small decodes in well under a millisecond, less than handing it to a thread and back costs.
INLINE_DECODE_PIXELS = 320 * 320
KNOWN_PATHS = frozenset({"/", "/predict", "/health", "/info", "/metrics", "/docs", "/openapi.json", "/demo.jpg"})
MIDDLEWARE_ERRORS = {401: "unauthorized", 413: "body_too_large"}  # refusals answered before any route runs
logger = logging.getLogger("simrec.serve")
# python-multipart logs a warning for every malformed form it is sent; the client gets its 400, the log stays clean.
logging.getLogger("python_multipart").setLevel(logging.ERROR)


@cache
def _demo_image() -> bytes:
    from simrec_cli.data.synthetic import demo_jpeg

    return demo_jpeg()


class PredictionService:
    """Admission, decoding, batching and answering of prediction requests; shared by the routes."""

    def __init__(self, model: ServedModel, options: ServeOptions, metrics: ServerMetrics) -> None:
        self.model = model
        self.options = options
        self.metrics = metrics
        self.batcher = Batcher(model, options.max_batch, options.max_wait_ms / 1000, metrics)
        self.decoders = anyio.CapacityLimiter(DECODE_THREADS)
        self.reader = RequestReader(options.max_expressions, options.allow_paths)

    def start(self) -> None:
        """Start the batcher and wait until its model is prepared (compiled, with --compile); again: nothing."""
        self.batcher.start()
        self.batcher.wait_ready()

    async def predict(self, request: Request) -> dict[str, Any]:
        if self.metrics.in_progress.value >= self.options.queue_size:
            raise RequestProblem(
                503,
                "queue_full",
                f"the server is busy ({self.options.queue_size} requests in progress); retry after the time in the "
                "Retry-After header",
                headers={"Retry-After": str(self.retry_after_seconds())},
            )
        self.metrics.in_progress.add(1)
        started = time.monotonic()
        body_read = asyncio.Event()
        try:
            return await asyncio.wait_for(self._answer(request, body_read), timeout=self.options.timeout_s)
        except asyncio.TimeoutError as exc:
            if not body_read.is_set():
                raise RequestProblem(
                    408,
                    "body_timeout",
                    f"the request's body did not arrive within {self.options.timeout_s:g} s: the upload stalled "
                    "between the client and this server; check the connection, or send a smaller image",
                    headers={"Connection": "close"},
                ) from exc
            raise RequestProblem(
                504,
                "timeout",
                f"no answer within {self.options.timeout_s:g} s; the server is overloaded or the image is too large",
            ) from exc
        finally:
            self.metrics.in_progress.add(-1)
            self.metrics.latency.observe(time.monotonic() - started)

    def retry_after_seconds(self) -> int:
        """Seconds until the queue has likely moved on: waiting passes times the mean forward time, at least 1."""
        forward = self.metrics.forward
        mean = forward.total / forward.count if forward.count else 1.0
        passes = self.metrics.queue_length.value / self.options.max_batch + 1
        return max(1, math.ceil(passes * mean))

    async def _answer(self, request: Request, body_read: asyncio.Event) -> dict[str, Any]:
        asked = await self.reader.read(request)
        body_read.set()
        image = await self._prepare(asked)
        encoded = [self._encode(number, text) for number, text in enumerate(asked.expressions, 1)]
        job = Job(image.key, image.canvas, np.stack([entry.tokens for entry in encoded]))
        raw: RawAnswers = await asyncio.wrap_future(self.batcher.submit(job))
        answer = functools.partial(
            answer_records, image, asked.expressions, encoded, raw, self.model.mask_threshold, asked.mask_format
        )
        # Boxes are a few multiplications; masks are resized to the image and encoded, which is worth a thread.
        records = await anyio.to_thread.run_sync(answer) if raw.masks is not None else answer()
        self.metrics.expressions.inc(len(records))
        return {"results": records}

    async def _prepare(self, asked: PredictInput) -> PreparedImage:
        data = asked.data
        if data is None:
            data = await anyio.to_thread.run_sync(read_server_file, asked.path, self.options.max_body_bytes)
        field = "image" if asked.path is None else "image_path"
        prepare = functools.partial(
            prepare_image, data, asked.name, self.model.input_shape, self.options.max_pixels, field
        )
        if header_pixels(data) <= INLINE_DECODE_PIXELS:
            return prepare()
        return await anyio.to_thread.run_sync(prepare, limiter=self.decoders)

    def _encode(self, number: int, expression: str) -> Any:
        try:
            return self.model.encode(expression)
        except SimrecError as exc:
            raise RequestProblem(
                422,
                "expression_without_words",
                f"expression {number} ({quoted(expression)}) has no words",
                "expression",
            ) from exc


class CountRequests:
    """ASGI middleware counting every HTTP answer by path and status, whichever layer produced it."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"] if scope["path"] in KNOWN_PATHS else "other"

        async def counted_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.metrics.requests.inc(path=path, status=message["status"])
                if message["status"] in MIDDLEWARE_ERRORS:
                    self.metrics.errors.inc(error=MIDDLEWARE_ERRORS[message["status"]])
            await send(message)

        await self.app(scope, receive, counted_send)


def create_app(model: ServedModel, options: ServeOptions) -> FastAPI:
    """The application for `model`; the batching thread runs between the app's startup and shutdown."""
    metrics = ServerMetrics()
    service = PredictionService(model, options, metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(service.start)
        yield
        await anyio.to_thread.run_sync(service.batcher.stop)

    app = FastAPI(
        title="simrec",
        version=__version__,
        description=schema.API_DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.service = service

    app.add_middleware(BodyLimit, max_bytes=options.max_body_bytes, drain_timeout_s=options.timeout_s)
    app.add_middleware(TokenGate, token=options.api_key)  # outside the body limit: no token, nothing is read
    app.add_middleware(CountRequests, metrics=metrics)

    @app.exception_handler(RequestProblem)
    async def refused(_: Request, problem: RequestProblem) -> JSONResponse:
        metrics.errors.inc(error=problem.code)
        return JSONResponse(problem.body(), status_code=problem.status, headers=problem.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        metrics.errors.inc(error=code)
        body = {"error": code, "detail": str(error.detail), "field": None}
        return JSONResponse(body, status_code=error.status_code, headers=error.headers)  # 405 names the methods

    @app.exception_handler(Exception)
    async def failed(_: Request, error: Exception) -> JSONResponse:
        logger.exception("request failed", exc_info=error)
        metrics.errors.inc(error="internal_error")
        detail = f"the server failed on this request ({type(error).__name__}: {error}); it goes on serving others"
        return JSONResponse({"error": "internal_error", "detail": detail, "field": None}, status_code=500)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(PAGE_DIR / "index.html", media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    async def page_file(name: str) -> FileResponse:
        if name not in PAGE_FILES:
            raise StarletteHTTPException(404, f"no file {name}")
        return FileResponse(PAGE_DIR / name, media_type=PAGE_FILES[name])

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    async def docs() -> FileResponse:
        return FileResponse(PAGE_DIR / "docs.html", media_type="text/html")

    @app.get(
        "/demo.jpg",
        summary="The demo image (synthetic shapes) the page offers",
        response_class=Response,
        responses=schema.DEMO_RESPONSES,
    )
    async def demo() -> Response:
        data = await anyio.to_thread.run_sync(_demo_image)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    @app.post(
        "/predict",
        summary="Find the object each expression describes in the image",
        response_model=None,
        responses=schema.PREDICT_RESPONSES,
        openapi_extra=schema.predict_request_body(options.max_expressions),
    )
    async def predict(request: Request) -> JSONResponse:
        return JSONResponse(await service.predict(request))

    @app.get("/health", summary="Whether the model thread is running", response_model=None,
             responses=schema.HEALTH_RESPONSES)  # fmt: skip
    async def health() -> JSONResponse:
        alive = service.batcher.alive
        return JSONResponse({"status": "ok" if alive else "down"}, status_code=200 if alive else 503)

    @app.get(
        "/info",
        summary="The model and the server's settings",
        response_model=schema.Info,
        responses=schema.OVER_CAPACITY,
    )
    async def info() -> dict[str, Any]:
        return {
            **model.describe(),
            "max_batch": options.max_batch,
            "max_wait_ms": options.max_wait_ms,
            "queue_size": options.queue_size,
            "timeout_s": options.timeout_s,
            "max_body_mb": options.max_body_mb,
            "max_pixels": options.max_pixels,
            "max_expressions": options.max_expressions,
            "max_connections": options.max_connections,
            "allow_paths": options.allow_paths,
            "mask_formats": list(MASK_FORMATS) if model.has_mask else ["none"],
        }

    @app.get(
        "/metrics",
        summary="Counters and histograms in the Prometheus text format",
        response_class=PlainTextResponse,
        responses=schema.METRICS_RESPONSES,
    )
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type=CONTENT_TYPE)

    if options.api_key is not None:
        plain_openapi = app.openapi
        app.openapi = lambda: schema.with_token(plain_openapi())  # type: ignore[method-assign]
    return app
