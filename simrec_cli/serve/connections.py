"""uvicorn's HTTP/1.1 connection with a cap on open connections and a deadline for the request's headers, answering
broken requests quietly.

uvicorn accepts every connection it is offered and serves each, so a flood of clients is served ever more slowly
until the process runs out of file descriptors (and then it stops accepting anyone). Here a connection beyond the
`max_connections` open at once is answered at its first request with 503, `Retry-After` and the server's JSON error
body, and closed; what it sends of a body is read and dropped first (for at most `drain_timeout_s`), so the client
sees the 503 rather than a reset. A health check is answered on it all the same (then it closes too): a busy server
is not a dead one, and a supervisor that restarts it for being busy would only make things worse.

uvicorn closes a kept-alive connection that sends nothing, but a connection that has started a request and never
finishes its headers (one byte at a time, or nothing after the first line) is held for as long as the client
likes, and hundreds of them hold hundreds of sockets. Here every request's headers must arrive within
`header_timeout_s` of its first byte (of the connection, for the first request); otherwise the connection is
answered 408 and closed. The body has its own limit: the request's `--timeout-s`, enforced by the application.

A request that is not HTTP at all gets a 400 with the server's JSON error body, and uvicorn's warnings about what
clients send (invalid requests, WebSocket upgrades with advice to install a library) stay out of the server's
output: like every other bad request, they are the client's to fix, and a client could flood the log with them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from simrec_cli.serve.limits import refuse

# The connections' logger instead of uvicorn's: its errors still show, its notes about clients do not. (Outside
# uvicorn's tree of loggers, whose configuration would reset it.)
CONNECTION_LOG = logging.getLogger("simrec.serve.connections")
CONNECTION_LOG.setLevel(logging.ERROR)
HEALTH_PATH = "/health"
RETRY_AFTER_S = 1  # connections come and go within a request's time: a second is a fair wait
LINGER_S = 1.0  # how long a refused connection's further bytes are read and dropped before it is closed


def closing_answer(status: int, reason: str, error: str, detail: str) -> bytes:
    """A complete HTTP/1.1 answer with the server's JSON error body, closing the connection."""
    body = json.dumps({"error": error, "detail": detail, "field": None}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class GuardedConnection(H11Protocol):
    """H11Protocol that refuses the requests of a connection beyond `max_connections` and closes a connection whose
    request headers take longer than `header_timeout_s`."""

    def __init__(
        self, *args: Any, header_timeout_s: float, max_connections: int, drain_timeout_s: float, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.logger = CONNECTION_LOG
        self.header_timeout_s = header_timeout_s
        self.max_connections = max_connections
        self.drain_timeout_s = drain_timeout_s
        self._header_deadline: asyncio.TimerHandle | None = None
        self._lingering = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # counts this connection among the server's open ones
        if len(self.connections) > self.max_connections:
            self.app = OverCapacity(self.app, self.max_connections, self.drain_timeout_s)
        self._start_deadline()

    def data_received(self, data: bytes) -> None:
        if self._lingering:  # answered and closing: what still arrives is dropped
            return
        cycle = self.cycle
        if self._header_deadline is None and (cycle is None or cycle.response_complete):
            self._start_deadline()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)
        if self.cycle is not cycle:  # the headers of a request arrived: it runs under the application's limits
            self._stop_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline()
        super().connection_lost(exc)

    def _start_deadline(self) -> None:
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _stop_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def send_400_response(self, msg: str) -> None:
        """What uvicorn answers a request h11 cannot parse, in the shape of every other refusal."""
        detail = "the request is not valid HTTP/1.1 (its request line or a header is malformed)"
        self._answer_and_close(closing_answer(400, "Bad Request", "bad_http", detail))

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            detail = f"the request's headers did not arrive within {self.header_timeout_s:g} s"
            self._answer_and_close(closing_answer(408, "Request Timeout", "header_timeout", detail))

    def _answer_and_close(self, answer: bytes) -> None:
        """Send `answer`, then end the sending side and drop what the client still sends for LINGER_S before closing.

        Closing a socket with unread bytes makes the kernel reset the connection, and the reset can discard the
        answer before the client reads it: a client still sending (a header a byte at a time) would see a reset
        instead of its 408.
        """
        self._lingering = True
        self.transport.write(answer)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)


class OverCapacity:
    """The application of a connection beyond the cap: 503 for every request but a health check, then close."""

    def __init__(self, app: ASGIApp, max_connections: int, drain_timeout_s: float) -> None:
        self.app = app
        self.max_connections = max_connections
        self.drain_timeout_s = drain_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == HEALTH_PATH:
            await self.app(scope, receive, _closing(send))
            return
        detail = (
            f"the server has {self.max_connections:,} connections open, its --max-connections; retry after the "
            "Retry-After header's seconds"
        )
        headers = {"Retry-After": str(RETRY_AFTER_S)}
        await refuse(scope, receive, send, 503, "too_many_connections", detail, headers, self.drain_timeout_s)


def _closing(send: Send) -> Send:
    """`send` with `Connection: close` added to the answer's headers, so that the connection ends after it."""

    async def closing_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
        await send(message)

    return closing_send
