"""End-to-end harness: the real `oabot serve` process and fake platform API servers.

`ServerProcess` runs `python -m bot serve [args]` with a given environment on a free port, waits for
its ready line, and stops it with SIGINT. `FakeApi` is a real aiohttp server on 127.0.0.1 that
records every request it receives and answers from handlers the test installs, so tests can
make a platform slow, failing or rate-limited.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.conftest import DEMO_ORG, ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(database_url: str, **extra: str) -> dict[str, str]:
    """A clean environment for a server process on the demo org, with the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OABOT_")}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "OABOT_DATABASE_URL": database_url,
            "OABOT_AUTO_MIGRATE": "1",
            "OABOT_ORG_FILE": str(DEMO_ORG),
            "OABOT_API_TOKEN": "e2e-token-0123456789",
            "OABOT_LOG_FORMAT": "json",
        }
    )
    env.update(extra)
    return env


class ServerProcess:
    def __init__(self, env: dict[str, str], cwd: Path, *, args: tuple[str, ...] = ()) -> None:
        self.env = dict(env)
        self.args = args  # after `serve`, e.g. ("--demo",)
        self.cwd = cwd
        self.port = free_port()
        self.env["OABOT_PORT"] = str(self.port)
        self.env.setdefault("OABOT_PUBLIC_URL", f"http://127.0.0.1:{self.port}")
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.proc: asyncio.subprocess.Process | None = None
        self.log_path = cwd / f"serve-{self.port}.log"
        self.output: list[str] = []

    async def start(self, timeout: float = 60.0) -> ServerProcess:
        log = self.log_path.open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "serve",
            *self.args,
            cwd=self.cwd,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
        assert self.proc.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    line = (await self.proc.stdout.readline()).decode()
                    if not line:
                        raise RuntimeError(
                            f"server exited before ready; log:\n{self.log_path.read_text()[-4000:]}"
                        )
                    self.output.append(line)
                    if "ready" in line:
                        return self
        except TimeoutError:
            await self.stop()
            raise RuntimeError(
                f"server not ready in {timeout}s; log:\n{self.log_path.read_text()[-4000:]}"
            ) from None

    async def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc is None or self.proc.returncode is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGINT)
        try:
            async with asyncio.timeout(timeout):
                return await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            return await self.proc.wait()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def __aenter__(self) -> ServerProcess:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Responder = Callable[[web.Request, Recorded], Awaitable[web.StreamResponse]]


@dataclass
class FakeApi:
    """A fake platform API on 127.0.0.1: `route(method, path, responder)`, then `start()`."""

    name: str
    requests: list[Recorded] = field(default_factory=list)
    _routes: dict[tuple[str, str], Responder] = field(default_factory=dict)
    port: int = 0
    _runner: web.AppRunner | None = None

    def route(self, method: str, path: str, responder: Responder) -> None:
        self._routes[(method.upper(), path)] = responder

    def calls(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        rec = Recorded(
            request.method, request.path, dict(request.query), dict(request.headers), await request.read()
        )
        self.requests.append(rec)
        responder = self._routes.get((request.method, request.path))
        if responder is None:
            return web.json_response(
                {"errcode": 404, "errmsg": f"fake {self.name}: no route {request.method} {request.path}"},
                status=404,
            )
        return await responder(request, rec)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeApi:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeApi:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll `predicate` (sync or async) until truthy; the servers work in the background."""
    async with asyncio.timeout(timeout):
        while True:
            value = predicate()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            await asyncio.sleep(interval)
