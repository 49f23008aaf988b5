"""The request body limit, enforced as the bytes arrive (before any parsing), answered with 413 and a JSON body.

A declared Content-Length over the limit is refused before reading; a chunked body is counted as it streams.
The rest of an oversized body is read and dropped (up to DRAIN_LIMIT, for at most `drain_timeout_s`) so the client
sees the 413 rather than a connection reset in the middle of its upload, and a client that declares megabytes and
sends none does not hold the connection.
"""

from __future__ import annotations

import anyio
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DRAIN_LIMIT = 256 * 1024 * 1024


class BodyTooLarge(Exception):
    """Raised inside `receive` when the body passes the limit."""


class BodyLimit:
    """ASGI middleware: HTTP bodies larger than `max_bytes` get 413 `body_too_large`."""

    def __init__(self, app: ASGIApp, max_bytes: int, drain_timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.drain_timeout_s = drain_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False
        body_complete = False

        async def counted_receive() -> Message:
            nonlocal received, body_complete
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_complete = not message.get("more_body", False)
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send, drain=not body_complete)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, drain: bool = True) -> None:
        limit_mb = self.max_bytes / (1024 * 1024)
        detail = (
            f"the request body has more than {limit_mb:g} MB; send a smaller image (or start the server with a larger "
            "--max-body-mb)"
        )
        await refuse(scope, receive, send, 413, "body_too_large", detail, {}, self.drain_timeout_s if drain else 0)


async def refuse(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    error: str,
    detail: str,
    headers: dict[str, str],
    drain_timeout_s: float,
) -> None:
    """Answer `status` with the server's JSON error body and close the connection, after reading and dropping what
    arrives of the body within `drain_timeout_s` (0: nothing)."""
    if drain_timeout_s > 0:  # once the last part is read, receive() would wait for the client to hang up
        with anyio.move_on_after(drain_timeout_s):
            await _drain(receive)
    body = {"error": error, "detail": detail, "field": None}
    await JSONResponse(body, status_code=status, headers={**headers, "Connection": "close"})(scope, receive, send)


async def _drain(receive: Receive) -> None:
    """Read and drop what is left of the body, so the client finishes sending before it reads the answer."""
    drained = 0
    while drained < DRAIN_LIMIT:
        message = await receive()
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return
