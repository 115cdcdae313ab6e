"""The DingTalk (钉钉) adapter: an internal app's robot and interactive cards.

`setup_dingtalk(app)` (at build time) registers the HTTP callback routes in `http` mode, or the
stream's readiness check in `stream` mode, and one cleanup_ctx that starts and stops the stream
client. `dingtalk_delivery(app)` gives the outbox dispatcher its `Delivery`.

Inbound: callbacks.py (HTTP) and stream.py (websocket) verify and parse, then hand a neutral
event to the inbox. Outbound: delivery.py renders outbox payloads with cards.py and calls
DingTalk through client.py. Nothing in this package decides an approval rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from bot.keys import CLOCK, DB, DINGTALK, HTTP, INBOX, KV, ORG_SYNC, READINESS, SETTINGS
from bot.platforms.dingtalk.callbacks import add_routes
from bot.platforms.dingtalk.client import DingTalkClient
from bot.platforms.dingtalk.crypto import EventCrypto
from bot.platforms.dingtalk.delivery import DingTalkDelivery
from bot.platforms.dingtalk.stream import ContactChanged, StreamConnection
from bot.settings import DingTalkSettings
from notifications.delivery import Delivery

logger = logging.getLogger(__name__)

__all__ = ["DingTalk", "dingtalk_delivery", "setup_dingtalk"]


@dataclass
class DingTalk:
    """The adapter's objects for one app, under `app[DINGTALK]`."""

    settings: DingTalkSettings
    client: DingTalkClient
    delivery: DingTalkDelivery
    crypto: EventCrypto | None
    stream: StreamConnection | None = None


def _dingtalk(app: web.Application) -> DingTalk:
    """The adapter, built on first use once the HTTP client, store and database are open."""
    existing = app.get(DINGTALK)
    if existing is not None:
        return existing
    settings = app[SETTINGS].dingtalk
    if settings is None:
        raise RuntimeError("DingTalk is not configured")
    client = DingTalkClient(app[HTTP], app[KV], settings)
    crypto = (
        EventCrypto(settings.token, settings.aes_key, settings.app_key)
        if settings.token and settings.aes_key
        else None
    )
    adapter = DingTalk(
        settings=settings,
        client=client,
        delivery=DingTalkDelivery(client, app[DB], app[KV], settings, app[CLOCK].now),
        crypto=crypto,
    )
    app[DINGTALK] = adapter
    return adapter


def dingtalk_delivery(app: web.Application) -> Delivery:
    return _dingtalk(app).delivery


async def check_dingtalk_stream(app: web.Application) -> tuple[str, bool, str]:
    adapter = app.get(DINGTALK)
    if adapter is None or adapter.stream is None:
        return "dingtalk_stream", False, "not started"
    ok, detail = adapter.stream.state.describe()
    return "dingtalk_stream", ok, detail


def _contact_changed(app: web.Application) -> ContactChanged | None:
    """What a stream contact event does: schedule a re-read (None: directory sync not set up)."""
    sync = app.get(ORG_SYNC)
    if sync is None:
        return None

    async def schedule(scope: str, ident: str, event: str, key: str) -> bool:
        return await sync.schedule_refresh("dingtalk", scope, ident, event=event, event_key=key)

    return schedule


async def dingtalk_ctx(app: web.Application) -> AsyncIterator[None]:
    """Runs after the workflow ctx, so the inbox exists: starts the stream client, stops it first."""
    adapter = _dingtalk(app)
    task: asyncio.Task[None] | None = None
    if adapter.settings.mode == "stream" and app[SETTINGS].run_background and app[SETTINGS].runs_web:
        adapter.stream = StreamConnection(
            adapter.settings,
            app[HTTP],
            app[INBOX].accept,
            now=app[CLOCK].now,
            on_contact=_contact_changed(app),
        )
        task = asyncio.create_task(adapter.stream.run(), name="dingtalk-stream")
    yield
    if task is not None and adapter.stream is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await adapter.stream.drain()


def setup_dingtalk(app: web.Application) -> None:
    settings = app[SETTINGS].dingtalk
    if settings is None:
        return
    if settings.mode == "http":
        add_routes(app)
    else:
        app[READINESS].add(check_dingtalk_stream)
    app.cleanup_ctx.append(dingtalk_ctx)
    logger.debug("dingtalk adapter set up", extra={"mode": settings.mode})
