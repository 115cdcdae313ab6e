"""The HTTP edge's middlewares: request id + access log + metrics, JSON errors, API bearer auth,
rate limits (`bot.web.rate_limits`), and the check of untrusted text in queries and form posts
(`bot.web.input_rules`).

Order matters and is fixed by `MIDDLEWARES`: the request context is outermost so the access log
and metrics see the final status of every response, including errors the inner layers produced.
This is the only place a domain refusal (`org.errors.DomainError`: approval, check-in, form and
service errors) becomes an HTTP status and a JSON body. Nothing here decides business rules.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from http import HTTPStatus
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot.keys import API_TOKENS, METRICS, PRINCIPAL, REQUEST_ID
from bot.logs import redact_secrets, request_id_var
from bot.metrics import UNMATCHED_ROUTE
from bot.web.api_errors import ApiError, Unauthorized
from bot.web.input_rules import input_middleware
from bot.web.rate_limits import rate_limit_middleware
from notifications.messages import message_for
from org.errors import Category, DomainError
from services.api_tokens import TokenRefused
from services.health import database_unavailable

logger = logging.getLogger(__name__)
# A database outage: how long clients are told to wait before trying again.
DB_RETRY_AFTER_S = 5
access_logger = logging.getLogger("oabot.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUEST_ID_HEADER = "X-Request-Id"
API_PREFIX = "/api/"
# A client's request id is honoured only if it is short and harmless in a log line.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# Error codes for aiohttp's own HTTP errors; any other status falls back to its phrase in snake_case.
_HTTP_ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
}
# The one map from a domain refusal's category to the HTTP status that answers it.
_CATEGORY_STATUS: dict[Category, int] = {
    Category.REFUSED: 400,
    Category.INVALID: 422,
    Category.NOT_FOUND: 404,
    Category.FORBIDDEN: 403,
    Category.CONFLICT: 409,
    Category.GONE: 410,
    Category.TOO_MANY: 429,
    Category.UNAVAILABLE: 503,
}
_HTTP_ERROR_MESSAGES = {
    404: "There is nothing at this address.",
    405: "This method is not allowed here.",
    413: "The request body is too large.",
}


def request_id_of(request: web.Request) -> str | None:
    return request.get(REQUEST_ID)


def route_of(request: web.Request) -> str:
    """The matched route's canonical path (`/api/requests/{id}`), never the raw URL."""
    route = request.match_info.route
    resource = route.resource if route is not None else None
    if resource is None:
        return UNMATCHED_ROUTE
    return resource.canonical


def status_for(exc: DomainError) -> int:
    """The HTTP status answering a domain refusal (also used by pages that render their own)."""
    return _CATEGORY_STATUS[exc.category]


def _domain_details(exc: DomainError) -> dict[str, Any] | None:
    details = {k: v.isoformat() if isinstance(v, date | datetime) else v for k, v in exc.context.items()}
    return details or None


def error_response(
    request: web.Request, status: int, code: str, message: str, details: Any = None
) -> web.Response:
    body = {"error": code, "message": message, "details": details, "request_id": request_id_of(request)}
    return web.json_response(body, status=status, dumps=readable_json)


def readable_json(value: Any) -> str:
    """JSON with Chinese (and every other non-ASCII text) as itself rather than \\u escapes."""
    return json.dumps(value, ensure_ascii=False)


@web.middleware
async def request_context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Assign the request id, then log and count the request once it is answered."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    token = request_id_var.set(request_id)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except asyncio.CancelledError:
        status = 499  # the client went away before the answer (nginx's code for it)
        raise
    except web.HTTPException as exc:
        # Only reached for successes and redirects raised as exceptions; errors became responses.
        status = exc.status
        raise
    finally:
        elapsed = time.perf_counter() - started
        route = route_of(request)
        request.config_dict[METRICS].observe_request(request.method, route, status, elapsed)
        if access_logger.isEnabledFor(logging.INFO):  # nothing is built for a line nobody keeps
            # Link tokens in the path never reach a log, matched route or not (404, 405, 500).
            access_logger.info(
                "%s %s -> %s in %.1f ms",
                request.method,
                redact_secrets(request.path),
                status,
                elapsed * 1000,
                extra={
                    "method": request.method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 1),
                },
            )
        request_id_var.reset(token)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as JSON with a 4xx/5xx status; tracebacks only go to the log."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(request, exc.status, exc.code, exc.message, exc.details)
    except DomainError as exc:
        return error_response(request, status_for(exc), exc.code, message_for(exc), _domain_details(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_exception_response(request, exc)
    except json.JSONDecodeError as exc:
        details = {"line": exc.lineno, "column": exc.colno, "reason": exc.msg}
        return error_response(request, 400, "invalid_json", "The request body is not valid JSON.", details)
    except Exception as exc:
        if database_unavailable(exc):
            logger.warning(
                "database unavailable handling %s %s: %r", request.method, redact_secrets(request.path), exc
            )
            response = error_response(
                request, 503, "database_unavailable", "数据库暂时无法访问，请稍后重试。"
            )
            response.headers["Retry-After"] = str(DB_RETRY_AFTER_S)
            return response
        logger.exception(
            "unexpected error handling %s %s",
            request.method,
            redact_secrets(request.path),
            extra={"request_id": request_id_of(request)},
        )
        return error_response(
            request,
            500,
            "internal",
            "Something went wrong on our side; quote the request id when reporting it.",
        )


# Pages people open in a browser or a platform's web view; a mistyped address there gets a page
# in Chinese (with a way back), not the API's JSON.
_PAGE_PREFIXES = ("/m/", "/console", "/admin", "/checkin", "/verify/")
_PAGE_MISSES = {
    404: "这个页面不存在：地址可能输错了，或链接已失效。请从消息卡片或工作台重新打开。",
    405: "这个页面不能这样打开，请从工作台重新进入。",
}


def _wants_page(request: web.Request) -> bool:
    if not request.path.startswith(_PAGE_PREFIXES) or aiohttp_jinja2.APP_KEY not in request.config_dict:
        return False
    accept = request.headers.get("Accept", "")
    return "text/html" in accept or request.method == "GET" and not accept


def _page_miss(request: web.Request, status: int) -> web.Response:
    title = "页面不存在" if status == 404 else "无法打开"
    context = {"title": title, "back": "/m/", "message": _PAGE_MISSES[status]}
    return aiohttp_jinja2.render_template("m/request_refused.html", request, context, status=status)


def _http_exception_response(request: web.Request, exc: web.HTTPException) -> web.Response:
    status = exc.status
    if status in _PAGE_MISSES and _wants_page(request):
        return _page_miss(request, status)
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = exc.reason
    code = _HTTP_ERROR_CODES.get(status) or re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_")
    message = _HTTP_ERROR_MESSAGES.get(status) or exc.text or phrase
    if message.startswith(f"{status}:"):
        # aiohttp's default text is "404: Not Found"; say it plainly instead.
        message = phrase
    details: Any = None
    if isinstance(exc, web.HTTPMethodNotAllowed):
        details = {"allowed": sorted(exc.allowed_methods)}
    response = error_response(request, status, code, message, details)
    for name in ("Allow", "Retry-After", "WWW-Authenticate"):
        if name in exc.headers:
            response.headers[name] = exc.headers[name]
    return response


@web.middleware
async def api_auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Everything under /api/ needs `Authorization: Bearer <token>`: a named token (`oabot tokens`)
    or the bootstrap OABOT_API_TOKEN. The caller behind it goes on the request (`PRINCIPAL`);
    each route then checks its own scope (`bot.web.routes`).

    With no token configured and none created the API is closed rather than open: a forgotten
    variable must not publish everyone's approvals. Platform callbacks live outside /api/ and
    verify signatures instead.
    """
    if request.path == API_PREFIX.rstrip("/") or request.path.startswith(API_PREFIX):
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        secret = given.strip() if scheme.lower() == "bearer" else ""
        try:
            request[PRINCIPAL] = await request.config_dict[API_TOKENS].resolve(secret)
        except TokenRefused as exc:
            raise Unauthorized(exc.message, details={"token": exc.reason}) from None
    return await handler(request)


async def echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: every response, streamed ones too, carries X-Request-Id."""
    request_id = request_id_of(request)
    if request_id is not None:
        response.headers[REQUEST_ID_HEADER] = request_id


MIDDLEWARES = (
    request_context_middleware,
    error_middleware,
    api_auth_middleware,
    rate_limit_middleware,
    input_middleware,
)
