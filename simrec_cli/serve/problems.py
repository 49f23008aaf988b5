"""What the server answers when a request cannot be served: an HTTP status and a JSON body naming the problem.

Every refusal has a stable machine-readable `error` code, a `detail` sentence for people (what is wrong and how
to fix it) and, where one field is at fault, its name in `field`.
"""

from __future__ import annotations

from typing import Any


class RequestProblem(Exception):
    """A request the server refuses; becomes `{"error": code, "detail": ..., "field": ...}` with `status`."""

    def __init__(
        self, status: int, code: str, detail: str, field: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail, "field": self.field}
