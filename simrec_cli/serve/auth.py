"""The optional API token (`--api-key` or SIMREC_API_KEY): every route but /health answers 401 without it.

A client sends `Authorization: Bearer TOKEN`. A browser opening the page cannot add that header, so the token is
also taken as the password of HTTP Basic authentication (any user name): the browser asks for it once and sends
it with the page's own requests. Tokens are compared in constant time, so the time of a refusal does not tell
how much of a guess was right.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

OPEN_PATHS = frozenset({"/health"})  # what a load balancer or orchestrator probes without credentials
REALM = "simrec"
# One header per scheme: a browser reads the schemes it knows (Basic) from headers of their own.
CHALLENGES = [(b"www-authenticate", f'{scheme} realm="{REALM}"'.encode()) for scheme in ("Bearer", "Basic")]


class TokenGate:
    """ASGI middleware: a request without the token gets 401 `unauthorized` and a WWW-Authenticate challenge."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.expected = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.expected is None or scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        given = presented_token(dict(scope["headers"]).get(b"authorization"))
        if given is not None and hmac.compare_digest(given, self.expected):
            await self.app(scope, receive, send)
            return
        detail = (
            "this server needs its API token: send the header 'Authorization: Bearer TOKEN'"
            if given is None
            else "the API token is wrong; send the token the server was started with"
        )
        response = JSONResponse({"error": "unauthorized", "detail": detail, "field": None}, status_code=401)
        response.raw_headers.extend(CHALLENGES)
        await response(scope, receive, send)


def presented_token(header: bytes | None) -> bytes | None:
    """The token in an Authorization header: a Bearer token, or the password of Basic credentials; else None."""
    if header is None:
        return None
    scheme, _, credentials = header.strip().partition(b" ")
    credentials = credentials.strip()
    if scheme.lower() == b"bearer":
        return credentials or None
    if scheme.lower() == b"basic":
        try:
            decoded = base64.b64decode(credentials, validate=True)
        except (binascii.Error, ValueError):
            return None
        _, colon, password = decoded.partition(b":")
        return password if colon else None
    return None
