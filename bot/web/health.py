"""Health routes: `/healthz` (the process answers), `/readyz` (its dependencies answer) and
`/metrics` (Prometheus text).

Readiness is a list of checks under `app[READINESS]`; a module that depends on something adds
its own with `app[READINESS].add(check)`, where `check(app)` returns `(name, ok, detail)`.
Anyone gets the verdict (`{"status": "ready"}` or 503 `not_ready`); only a caller with an
admin-scoped API token gets the checks and their details, which name hosts and versions.
Checks run concurrently, each with a time limit, and a check that raises counts as failing:
a readiness probe must answer, not hang or crash. The database checks are `services.health`'s;
nothing here touches storage or changes any state but the log.
"""

from __future__ import annotations

import asyncio
import logging
from typing import NamedTuple

from aiohttp import web

from bot.keys import API_TOKENS, DB, KV, METRICS, READINESS, SETTINGS, ReadinessCheck
from bot.logs import redact_url
from services.api_tokens import Scope
from services.health import database_answers, schema_is_current

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 3.0


class CheckResult(NamedTuple):
    name: str
    ok: bool
    detail: str


class Readiness:
    """The readiness checks of one app, and which of them failed last time (to log changes only)."""

    def __init__(self, checks: list[ReadinessCheck] | None = None) -> None:
        self.checks: list[ReadinessCheck] = list(checks or [])
        self._failing: set[str] = set()

    def add(self, check: ReadinessCheck) -> None:
        self.checks.append(check)

    async def run(self, app: web.Application) -> list[CheckResult]:
        results = await asyncio.gather(*(self._run_one(app, check) for check in self.checks))
        failing = {r.name for r in results if not r.ok}
        for r in results:
            if not r.ok and r.name not in self._failing:
                logger.warning("readiness check %s failing: %s", r.name, r.detail, extra={"check": r.name})
            elif r.ok and r.name in self._failing:
                logger.info("readiness check %s recovered: %s", r.name, r.detail, extra={"check": r.name})
        self._failing = failing
        return list(results)

    async def _run_one(self, app: web.Application, check: ReadinessCheck) -> CheckResult:
        # A check that raises is reported under its function name, less a `check_` prefix.
        name = getattr(check, "__name__", "check").removeprefix("check_")
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                result_name, ok, detail = await check(app)
            return CheckResult(result_name, bool(ok), detail)
        except TimeoutError:
            return CheckResult(name, False, f"no answer within {CHECK_TIMEOUT_S:g} s")
        except Exception as exc:
            return CheckResult(name, False, f"{type(exc).__name__}: {exc}")


async def check_database(app: web.Application) -> tuple[str, bool, str]:
    return ("database", *await database_answers(app[DB]))


async def check_schema(app: web.Application) -> tuple[str, bool, str]:
    return ("schema", *await schema_is_current(app[DB]))


async def check_kv(app: web.Application) -> tuple[str, bool, str]:
    redis_url = app[SETTINGS].redis_url
    kind = "redis" if redis_url else "in-process"
    if await app[KV].ping():
        return "kv", True, kind
    return (
        "kv",
        False,
        f"redis at {redact_url(redis_url)} does not answer" if redis_url else "in-process store failed",
    )


def default_checks() -> list[ReadinessCheck]:
    return [check_database, check_schema, check_kv]


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def shown_details(request: web.Request) -> bool:
    """Whether the caller's bearer token has the admin scope (never raises: a probe must answer)."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip() or API_TOKENS not in request.config_dict:
        return False
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            principal = await request.config_dict[API_TOKENS].resolve(given.strip())
    except Exception:
        return False
    return Scope.ADMIN in principal.scopes


async def readyz(request: web.Request) -> web.Response:
    results = await request.app[READINESS].run(request.app)
    failing = [r.name for r in results if not r.ok]
    body: dict[str, object] = {"status": "not_ready" if failing else "ready"}
    if await shown_details(request):
        body["checks"] = {r.name: {"ok": r.ok, "detail": r.detail} for r in results}
        if failing:
            body["failing"] = failing
    return web.json_response(body, status=503 if failing else 200)


async def metrics(request: web.Request) -> web.Response:
    registry = request.app[METRICS]
    response = web.Response(body=registry.render())
    response.headers["Content-Type"] = registry.content_type
    return response


def setup_health(app: web.Application) -> None:
    app[READINESS] = Readiness(default_checks())
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/readyz", readyz, name="readyz")
    app.router.add_get("/metrics", metrics, name="metrics")
