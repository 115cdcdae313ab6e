"""The HTTP API's error hierarchy: what a client may be told went wrong, and with which status.

The HTTP edge raises these for problems only it can see (a body that is not JSON, a missing token,
a bad query); `bot.web.middleware` turns each into `{"error": code, "message": ..., "details": ...}`
with the status. Refusals of the layers below (`org.errors.DomainError`) are not wrapped in these:
the middleware maps their category to a status itself. Nothing below the edge imports this module.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error meant for the API client. Subclasses fix `status` and `code`."""

    status: int = 400
    code: str = "bad_request"
    default_message: str = "The request is not valid."

    def __init__(
        self,
        message: str | None = None,
        details: Any = None,
        *,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "details": self.details}


class InvalidJson(ApiError):
    status = 400
    code = "invalid_json"
    default_message = "The request body is not valid JSON."


class ValidationFailed(ApiError):
    """The body parsed but its fields are wrong; `details` maps field -> problem."""

    status = 422
    code = "invalid"
    default_message = "Some fields are not valid."


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"
    default_message = "A valid API token is required: send 'Authorization: Bearer <OABOT_API_TOKEN>'."


class Conflict(ApiError):
    """Someone changed the thing first (a stale version) or it is in a state that forbids this."""

    status = 409
    code = "conflict"
    default_message = "The request conflicts with the current state."
