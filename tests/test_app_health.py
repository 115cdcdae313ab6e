"""The service foundation as a client sees it: health routes, metrics, JSON errors, auth, request ids."""

from __future__ import annotations

import io
import json
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from approvals.clock import ManualClock
from approvals.errors import RateLimited
from bot.app import create_app, open_database
from bot.keys import CLOCK, DB, HTTP, KV, METRICS, READINESS, SCHEDULER
from bot.logs import configure_logging
from bot.settings import Settings
from bot.web.api_errors import Conflict
from bot.web.input_rules import read_json
from storage.migrate import upgrade
from tests.conftest import PG_URL, REDIS_URL, create_pg_schema, drop_pg_schema

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/app.db",
        api_token=TOKEN,
        run_background=False,
    )


async def migrate(url: str) -> None:
    db = open_database(url)
    try:
        await upgrade(db)
    finally:
        await db.dispose()


@pytest.fixture
async def client(aiohttp_client: ClientFactory, settings: Settings) -> TestClient[Any, Any]:
    """A client of an app whose SQLite database is migrated, with a few routes only tests have."""
    await migrate(settings.database_url)
    return await aiohttp_client(app_with_test_routes(settings))


def app_with_test_routes(settings: Settings) -> web.Application:
    app = create_app(settings)

    async def thing(request: web.Request) -> web.Response:
        return web.json_response({"id": request.match_info["id"]})

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals: password=hunter2")

    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"got": await read_json(request)})

    async def raw_json(request: web.Request) -> web.Response:
        return web.json_response(await request.json())

    async def conflict(request: web.Request) -> web.Response:
        raise Conflict("Someone approved it first.", details={"version": 3})

    async def refused(request: web.Request) -> web.Response:
        at = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
        raise RateLimited(retry_at=at, shown={"retry_local": at}, task_id="t-1")

    app.router.add_get("/things/{id}", thing)
    app.router.add_get("/boom", boom)
    app.router.add_post("/api/echo", echo)
    app.router.add_post("/api/raw", raw_json)
    app.router.add_post("/api/conflict", conflict)
    app.router.add_post("/api/refused", refused)
    return app


# -- health ----------------------------------------------------------------------------------------


async def test_healthz_says_ok(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/healthz")

    assert resp.status == 200
    assert await resp.json() == {"status": "ok"}


async def test_readyz_is_ready_when_database_is_migrated_and_store_answers(
    client: TestClient[Any, Any],
) -> None:
    resp = await client.get("/readyz", headers=AUTH)

    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ready"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "schema": True,
        "kv": True,
        "calendar": True,  # always ok: missing holiday data is a warning in its detail
    }
    assert body["checks"]["kv"]["detail"] == "in-process"


async def test_readyz_names_the_schema_when_the_database_is_not_migrated(
    aiohttp_client: ClientFactory, settings: Settings
) -> None:
    client = await aiohttp_client(create_app(settings))

    resp = await client.get("/readyz", headers=AUTH)

    assert resp.status == 503
    body = await resp.json()
    assert body["status"] == "not_ready"
    assert body["failing"] == ["schema"]
    assert "run `oabot migrate`" in body["checks"]["schema"]["detail"]


async def test_unreachable_redis_fails_readyz_but_the_service_keeps_serving(
    aiohttp_client: ClientFactory, settings: Settings
) -> None:
    await migrate(settings.database_url)
    redis_url = f"redis://127.0.0.1:{closed_port()}/0"
    client = await aiohttp_client(create_app(settings.with_overrides(redis_url=redis_url)))

    resp = await client.get("/readyz", headers=AUTH)

    assert resp.status == 503
    body = await resp.json()
    assert body["failing"] == ["kv"]
    assert body["checks"]["kv"]["detail"] == f"redis at {redis_url} does not answer"
    assert (await client.get("/healthz")).status == 200


async def test_unreachable_database_fails_readyz_naming_it(
    aiohttp_client: ClientFactory, settings: Settings
) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/oabot"
    client = await aiohttp_client(create_app(settings.with_overrides(database_url=url)))

    resp = await client.get("/readyz", headers=AUTH)

    assert resp.status == 503
    body = await resp.json()
    assert set(body["failing"]) == {"database", "schema"}
    assert "Connect call failed" in body["checks"]["database"]["detail"]


@pytest.mark.skipif(
    PG_URL is None or REDIS_URL is None, reason="needs OABOT_TEST_DATABASE_URL and OABOT_TEST_REDIS_URL"
)
async def test_readyz_is_ready_on_postgres_schema_and_redis(
    aiohttp_client: ClientFactory, settings: Settings
) -> None:
    assert PG_URL is not None and REDIS_URL is not None
    schema = await create_pg_schema(PG_URL)
    try:
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
        await migrate(url)
        client = await aiohttp_client(
            create_app(
                settings.with_overrides(database_url=url, redis_url=REDIS_URL, redis_prefix="oabot-test:")
            )
        )
        assert client.app is not None
        assert client.app[DB].schema == schema

        resp = await client.get("/readyz", headers=AUTH)

        assert resp.status == 200, await resp.text()
        assert (await resp.json())["checks"]["kv"]["detail"] == "redis"
        await client.close()
    finally:
        await drop_pg_schema(PG_URL, schema)


async def test_other_modules_add_readiness_checks(aiohttp_client: ClientFactory, settings: Settings) -> None:
    await migrate(settings.database_url)
    app = create_app(settings)

    async def check_platform(app: web.Application) -> tuple[str, bool, str]:
        return "wecom", False, "access token refresh failed"

    async def check_broken(app: web.Application) -> tuple[str, bool, str]:
        raise ValueError("oops")

    app[READINESS].add(check_platform)
    app[READINESS].add(check_broken)
    client = await aiohttp_client(app)

    body = await (await client.get("/readyz", headers=AUTH)).json()

    assert body["failing"] == ["wecom", "broken"]
    assert body["checks"]["wecom"]["detail"] == "access token refresh failed"
    assert body["checks"]["broken"]["detail"] == "ValueError: oops"


# -- metrics ---------------------------------------------------------------------------------------


async def test_metrics_count_requests_by_route_template_and_status(client: TestClient[Any, Any]) -> None:
    await client.get("/things/1")
    await client.get("/things/2")
    await client.get("/no/such/page")

    resp = await client.get("/metrics")

    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    text = await resp.text()
    assert 'oabot_http_requests_total{method="GET",route="/things/{id}",status="200"} 2.0' in text
    assert 'oabot_http_requests_total{method="GET",route="<unmatched>",status="404"} 1.0' in text
    assert 'oabot_http_request_duration_seconds_count{method="GET",route="/things/{id}"} 2.0' in text
    assert "/things/1" not in text


async def test_each_app_has_its_own_metrics_and_modules_add_theirs(
    aiohttp_client: ClientFactory, settings: Settings
) -> None:
    first = await aiohttp_client(create_app(settings))
    second = await aiohttp_client(create_app(settings))
    assert first.app is not None and second.app is not None
    cards = first.app[METRICS].counter("cards_sent", "Cards sent to chat.", ("platform",))
    assert first.app[METRICS].counter("cards_sent", "Cards sent to chat.", ("platform",)) is cards
    cards.labels(platform="wecom").inc()
    await first.get("/healthz")

    first_text = await (await first.get("/metrics")).text()
    second_text = await (await second.get("/metrics")).text()

    assert 'oabot_cards_sent_total{platform="wecom"} 1.0' in first_text
    assert "oabot_cards_sent_total" not in second_text
    assert 'route="/healthz"' not in second_text


# -- JSON errors -----------------------------------------------------------------------------------


async def test_unknown_route_is_a_json_404(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/no/such/page")

    assert resp.status == 404
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert body["error"] == "not_found"
    assert body["message"] == "There is nothing at this address."
    assert body["request_id"] == resp.headers["X-Request-Id"]


async def test_wrong_method_is_a_json_405_listing_allowed_ones(client: TestClient[Any, Any]) -> None:
    resp = await client.delete("/healthz")

    assert resp.status == 405
    body = await resp.json()
    assert body["error"] == "method_not_allowed"
    assert "GET" in body["details"]["allowed"]
    assert "GET" in resp.headers["Allow"]


async def test_unexpected_error_is_a_json_500_without_internals(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        resp = await client.get("/boom", headers={"X-Request-Id": "req-42"})

    assert resp.status == 500
    body = await resp.json()
    assert body["error"] == "internal"
    assert body["request_id"] == "req-42"
    raw = json.dumps(body)
    assert "Traceback" not in raw and "hunter2" not in raw and "RuntimeError" not in raw
    logged = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert logged and logged[0].exc_info is not None
    assert getattr(logged[0], "request_id", None) == "req-42"


async def test_invalid_json_body_is_a_400_saying_where(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/api/echo", data=b'{"a": 1,,}', headers=AUTH)

    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "invalid_json"
    assert body["details"]["column"] == 9


async def test_json_decode_error_from_any_handler_is_a_400(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/api/raw", data=b"not json", headers=AUTH)

    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_json"


async def test_api_error_subclass_sets_status_code_and_details(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/api/conflict", headers=AUTH)

    assert resp.status == 409
    body = await resp.json()
    assert (body["error"], body["message"], body["details"]) == (
        "conflict",
        "Someone approved it first.",
        {"version": 3},
    )


async def test_a_domain_refusal_leaves_with_its_category_status_code_and_context(
    client: TestClient[Any, Any],
) -> None:
    resp = await client.post("/api/refused", headers=AUTH)

    assert resp.status == 429
    body = await resp.json()
    assert (body["error"], body["message"], body["details"]) == (
        "rate_limited",
        "每条待办 30 分钟内只能催办一次，09:30 后可再次催办",
        {"retry_at": "2026-11-23T09:30:00+00:00", "task_id": "t-1"},
    )


async def test_too_large_body_is_a_json_413(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/api/echo", data=b"x" * (3 * 1024 * 1024), headers=AUTH)

    assert resp.status == 413
    assert (await resp.json())["error"] == "payload_too_large"


# -- API token -------------------------------------------------------------------------------------


async def test_api_without_token_is_401(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/api/echo", json={"a": 1})

    assert resp.status == 401
    assert (await resp.json())["error"] == "unauthorized"


@pytest.mark.parametrize("header", [f"Bearer {TOKEN}x", "Bearer ", f"Basic {TOKEN}", TOKEN])
async def test_api_with_wrong_token_is_401(client: TestClient[Any, Any], header: str) -> None:
    resp = await client.post("/api/echo", json={"a": 1}, headers={"Authorization": header})

    assert resp.status == 401
    assert (await resp.json())["error"] == "unauthorized"


async def test_api_with_the_token_is_served(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/api/echo", json={"a": 1}, headers=AUTH)

    assert resp.status == 200
    assert await resp.json() == {"got": {"a": 1}}


async def test_unknown_api_route_still_needs_the_token(client: TestClient[Any, Any]) -> None:
    assert (await client.get("/api/nothing")).status == 401
    assert (await client.get("/api/nothing", headers=AUTH)).status == 404


async def test_api_is_closed_when_no_token_is_configured(
    aiohttp_client: ClientFactory, settings: Settings
) -> None:
    client = await aiohttp_client(app_with_test_routes(settings.with_overrides(api_token=None)))

    resp = await client.post("/api/echo", json={}, headers={"Authorization": "Bearer "})

    assert resp.status == 401
    assert "OABOT_API_TOKEN" in (await resp.json())["message"]


# -- request ids and logs --------------------------------------------------------------------------


async def test_request_id_is_echoed_when_given_and_generated_when_not(client: TestClient[Any, Any]) -> None:
    given = await client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    generated = await client.get("/healthz")
    hostile = await client.get("/healthz", headers={"X-Request-Id": "a b;<script>" + "x" * 200})

    assert given.headers["X-Request-Id"] == "abc-123"
    assert len(generated.headers["X-Request-Id"]) == 32
    assert len(hostile.headers["X-Request-Id"]) == 32


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


async def test_json_logs_are_one_object_per_line_with_the_request_id(
    client: TestClient[Any, Any], restore_logging: None
) -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)

    await client.get("/things/7", headers={"X-Request-Id": "req-7"})

    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [e for e in entries if e["logger"] == "oabot.access"]
    assert len(access) == 1
    assert {"ts", "level", "logger", "msg"} <= access[0].keys()
    assert access[0]["request_id"] == "req-7"
    assert access[0]["route"] == "/things/{id}"
    assert access[0]["status"] == 200
    assert access[0]["msg"].startswith("GET /things/7 -> 200 in ")


async def test_text_logs_carry_the_request_id(client: TestClient[Any, Any], restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging("INFO", "text", stream=stream)

    await client.get("/healthz", headers={"X-Request-Id": "req-8"})

    line = next(line for line in stream.getvalue().splitlines() if "oabot.access" in line)
    assert "GET /healthz -> 200" in line
    assert "request_id=req-8" in line


# -- resources -------------------------------------------------------------------------------------


async def test_resources_open_with_the_app_and_close_with_it(
    aiohttp_client: ClientFactory, settings: Settings
) -> None:
    clock = ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    app = create_app(settings, clock=clock)
    client = await aiohttp_client(app)
    scheduler = app[SCHEDULER]
    http = app[HTTP]

    assert app[CLOCK] is clock
    assert scheduler.running
    assert await app[KV].ping()
    assert not http.is_closed

    await client.close()

    assert not scheduler.running
    assert http.is_closed


async def test_a_mistyped_page_address_is_a_chinese_page_with_a_way_back(
    client: TestClient[Any, Any],
) -> None:
    for path in ("/m/no-such-page", "/console/nope", "/admin/nope", "/checkin/"):
        resp = await client.get(path, headers={"Accept": "text/html,application/xhtml+xml"})
        page = await resp.text()
        assert resp.status == 404, path
        assert resp.content_type == "text/html", path
        assert "这个页面不存在" in page and 'href="/m/"' in page, path
        assert "not_found" not in page and "There is nothing" not in page, path


async def test_a_program_asking_for_json_under_a_page_prefix_still_gets_json(
    client: TestClient[Any, Any],
) -> None:
    resp = await client.get("/m/no-such-page", headers={"Accept": "application/json"})

    assert resp.status == 404
    assert (await resp.json())["error"] == "not_found"
