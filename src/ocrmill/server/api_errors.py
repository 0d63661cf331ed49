"""HTTP errors of the API: one exception type with a status, a stable code and a message."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error response: ``{"error": {"code": ..., "message": ...}}`` with ``status``."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message)


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def overloaded(message: str, retry_after_s: int) -> ApiError:
    """503 with ``Retry-After``: the client should come back, not give up."""
    return ApiError(503, "overloaded", message, {"Retry-After": str(max(1, retry_after_s))})


def too_large(message: str, close: bool = False) -> ApiError:
    return ApiError(413, "too_large", message, {"Connection": "close"} if close else None)
