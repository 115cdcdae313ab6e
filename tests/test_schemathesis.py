"""schemathesis against the app's own OpenAPI document (issue 16): every operation, with valid and
invalid generated input, seeded and bounded, on a real port with a real admin API token.

Fails on any 5xx answer and on any answer that does not match the document (its status or its
body schema). The summary (cases, 5xx, schema violations) is printed; run with `-s` to see it.
A bigger one-off run: `OABOT_FUZZ_EXAMPLES=300 .venv/bin/python -m pytest -s tests/test_schemathesis.py`.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from queue import Queue
from typing import Any

import pytest
import requests
from aiohttp import web
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis import GenerationMode, openapi
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from approvals.clock import ManualClock
from bot.app import create_app
from bot.keys import API_TOKENS
from bot.web.openapi import document
from storage.db import Database
from tests.conftest import create_tables, import_demo_org, settings_for

EXAMPLES = int(os.environ.get("OABOT_FUZZ_EXAMPLES", "25"))  # per operation and generation mode
SEED = int(os.environ.get("OABOT_FUZZ_SEED", "20261130"))
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@dataclass
class Tally:
    cases: int = 0
    server_errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


class Server:
    """The app on 127.0.0.1 in its own thread and event loop (schemathesis calls it over HTTP)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(app)
        self.port: Queue[int] = Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        server = site._server
        assert server is not None
        self.port.put(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        self.loop.run_forever()
        self.loop.run_until_complete(self.runner.cleanup())
        self.loop.close()

    def start(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.port.get(timeout=30)}"

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, Server]]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/fuzz.db")

    async def prepare() -> None:
        await create_tables(database)
        await import_demo_org(database)
        await database.dispose()

    asyncio.run(prepare())
    clock = ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))  # Monday 10:00 in Shanghai
    server = Server(create_app(settings_for(database), clock=clock))
    base = server.start()
    try:
        _, secret = server.call(server.app[API_TOKENS].create(name="fuzz", scopes=["read", "act", "admin"]))
        yield base, secret, server
    finally:
        server.stop()


def _run_operation(
    operation: Any, mode: GenerationMode, base: str, auth: dict[str, str], tally: Tally
) -> None:
    session = requests.Session()

    @seed(SEED)
    @settings(
        max_examples=EXAMPLES,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],  # no shrinking: every case counts once
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def probe(case: Any) -> None:
        response = case.call(base_url=base, session=session, headers=auth, timeout=30)
        tally.cases += 1
        tally.statuses[response.status_code] += 1
        if response.status_code >= 500:
            tally.server_errors += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=auth)
        except (AssertionError, FailureGroup) as exc:
            if len(tally.failures) < 20:
                tally.failures.append(f"{case.method} {case.formatted_path} [{mode.value}]: {str(exc)[:400]}")

    probe()


def test_every_operation_answers_4xx_or_its_documented_success_never_5xx(
    served: tuple[str, str, Server],
) -> None:
    base, secret, _ = served
    auth = {"Authorization": f"Bearer {secret}"}
    schema = openapi.from_dict(document())
    tally = Tally()
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _run_operation(operation, mode, base, auth, tally)
    print(
        f"\nschemathesis: {len(operations)} operations, {tally.cases} cases, "
        f"{tally.server_errors} server errors, {len(tally.failures)} failures; "
        f"statuses {dict(sorted(tally.statuses.items()))}"
    )
    assert tally.cases >= len(operations) * 2
    assert tally.server_errors == 0, tally.failures
    assert not tally.failures, "\n".join(tally.failures)
