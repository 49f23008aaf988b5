"""uvicorn's HTTP/1.1 connection with a deadline for the request's headers.

uvicorn closes a kept-alive connection that sends nothing, but a connection that has started a request and never
finishes its headers (one byte at a time, or nothing after the first line) is held for as long as the client
likes, and hundreds of them hold hundreds of sockets. Here every request's headers must arrive within
`header_timeout_s` of its first byte (of the connection, for the first request); otherwise the connection is
answered 408 and closed. The body has its own limit: the request's `--timeout-s`, enforced by the application.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


def timeout_response(header_timeout_s: float) -> bytes:
    """A complete HTTP/1.1 408 answer with the server's JSON error body, closing the connection."""
    body = json.dumps(
        {
            "error": "header_timeout",
            "detail": f"the request's headers did not arrive within {header_timeout_s:g} s",
            "field": None,
        }
    ).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class HeaderDeadlineProtocol(H11Protocol):
    """H11Protocol that closes a connection whose request headers take longer than `header_timeout_s`."""

    def __init__(self, *args: Any, header_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout_s = header_timeout_s
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_deadline()

    def data_received(self, data: bytes) -> None:
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

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.write(timeout_response(self.header_timeout_s))
            self.transport.close()
