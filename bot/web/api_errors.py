"""The HTTP API's error hierarchy: what a client may be told went wrong, and with which status.

Handlers raise these (or translate their layer's errors into them); `bot.web.middleware` turns each
into `{"error": code, "message": ..., "details": ...}` with the status. Layers below the edge
(approvals, storage) keep their own errors and never import this module.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


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


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


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


class Forbidden(ApiError):
    status = 403
    code = "forbidden"
    default_message = "You may not do this."


class NotFound(ApiError):
    status = 404
    code = "not_found"
    default_message = "Nothing was found here."


class Conflict(ApiError):
    """Someone changed the thing first (a stale version) or it is in a state that forbids this."""

    status = 409
    code = "conflict"
    default_message = "The request conflicts with the current state."


class TooManyRequests(ApiError):
    status = 429
    code = "too_many_requests"
    default_message = "Too many requests; slow down."


class ServiceUnavailable(ApiError):
    status = 503
    code = "unavailable"
    default_message = "The service cannot handle this right now; try again shortly."


async def read_json(request: web.Request) -> Any:
    """The request body as JSON, or InvalidJson saying where it broke."""
    try:
        return await request.json(loads=json.loads)
    except json.JSONDecodeError as exc:
        raise InvalidJson(details={"line": exc.lineno, "column": exc.colno, "reason": exc.msg}) from exc
    except UnicodeDecodeError as exc:
        raise InvalidJson("The request body is not UTF-8 text.") from exc
