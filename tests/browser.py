"""A tiny headless-Chromium driver over the DevTools protocol (no downloads, no extra deps).

Starts Debian's /usr/bin/chromium headless with a fresh profile, attaches to its page over a
WebSocket and offers navigate / evaluate / wait_for — enough to click through the console.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import tempfile
from typing import Any

import aiohttp

from tests.e2e_harness import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self, *, geolocation: tuple[float, float, float] | None = None) -> None:
        self.port = free_port()
        self.profile = tempfile.mkdtemp(prefix="oabot-chromium-")
        self.proc: asyncio.subprocess.Process | None = None
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self.geolocation = geolocation

    async def start(self) -> Browser:
        assert CHROMIUM, "chromium is not installed (apt-get install -y chromium)"
        self.proc = await asyncio.create_subprocess_exec(
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
            f"--remote-debugging-port={self.port}",
            f"--user-data-dir={self.profile}",
            "--window-size=400,800",
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self.session = aiohttp.ClientSession()
        targets: list[dict[str, Any]] = []
        async with asyncio.timeout(30):
            while True:
                try:
                    async with self.session.get(f"http://127.0.0.1:{self.port}/json/list") as resp:
                        targets = [t for t in await resp.json() if t.get("type") == "page"]
                    if targets:
                        break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        self.ws = await self.session.ws_connect(targets[0]["webSocketDebuggerUrl"], max_msg_size=0)
        await self.send("Page.enable")
        await self.send("Runtime.enable")
        if self.geolocation:
            lat, lng, acc = self.geolocation
            await self.send("Emulation.setGeolocationOverride", latitude=lat, longitude=lng, accuracy=acc)
        return self

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        assert self.ws is not None
        msg_id = next(self._ids)
        await self.ws.send_str(json.dumps({"id": msg_id, "method": method, "params": params}))
        async with asyncio.timeout(30):
            while True:
                raw = await self.ws.receive()
                if raw.type != aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"devtools connection closed: {raw.type}")
                data = json.loads(raw.data)
                if data.get("id") == msg_id:
                    if "error" in data:
                        raise RuntimeError(f"{method}: {data['error']}")
                    return data.get("result", {})  # type: ignore[no-any-return]

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    async def navigate(self, url: str) -> None:
        await self.send("Page.navigate", url=url)
        await self.wait_for(
            f"document.readyState === 'complete' && location.href.startsWith({json.dumps(url.split('?')[0])})"
        )

    async def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    value = await self.evaluate(expression)
                except RuntimeError:
                    value = None
                if value:
                    return value
                await asyncio.sleep(0.1)

    async def emulate_phone(self, width: int = 390, height: int = 844) -> None:
        """Lay pages out as a phone does (390x844 CSS pixels, touch), so screenshots show that."""
        await self.send(
            "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=True
        )

    async def screenshot(self, path: str) -> None:
        import base64

        data = await self.send("Page.captureScreenshot", format="png")
        from pathlib import Path

        await asyncio.to_thread(Path(path).write_bytes, base64.b64decode(data["data"]))

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.session is not None:
            await self.session.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                async with asyncio.timeout(5):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)

    async def __aenter__(self) -> Browser:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
