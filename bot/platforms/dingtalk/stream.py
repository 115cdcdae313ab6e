"""Stream mode (no public URL): robot messages, card callbacks and (with directory sync on)
contact events over DingTalk's websocket.

The official `dingtalk-stream` SDK parses the frames, routes them to our handlers and sends the
acks. Two things are done our own way, because the SDK's are unfit inside an aiohttp service
(NOTES §3c):

- opening the connection: the SDK's `open_connection()` is a blocking `requests` call, and its
  `start()` loop swallows cancellation; `StreamConnection.run()` opens the connection with the
  app's async httpx client, connects the websocket, and reconnects with backoff by itself,
  keeping the state `/readyz` reports;
- the handlers: the SDK acks a frame only after `process()` returns, and DingTalk redelivers
  when the ack is late, so `process()` only parses, hands the neutral event to
  `Inbox.accept` (a dedupe and one INSERT) and returns. Never a DingTalk API call or an
  approval in here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote_plus

import dingtalk_stream
import httpx
import websockets
import websockets.exceptions
from dingtalk_stream import (
    AckMessage,
    CallbackHandler,
    CallbackMessage,
    ChatbotMessage,
    EventHandler,
    EventMessage,
)

from bot import __version__
from bot.platforms.dingtalk import inbound
from bot.platforms.dingtalk.cards import MalformedCardCallback
from bot.settings import DingTalkSettings
from handlers.events import Event

logger = logging.getLogger(__name__)

CARD_TOPIC = CallbackHandler.TOPIC_CARD_CALLBACK  # /v1.0/card/instances/callback
ROBOT_TOPIC = ChatbotMessage.TOPIC  # /v1.0/im/bot/messages/get
OPEN_PATH = "/v1.0/gateway/connections/open"

Accept = Callable[[Event], Awaitable[bool]]
# (scope, id, event, delivery key) -> whether a re-read was scheduled (services.org_sync)
ContactChanged = Callable[[str, str, str, str], Awaitable[bool]]


class CardCallbackHandler(CallbackHandler):  # type: ignore[misc]
    """Card taps: parse, accept into the inbox, ack. The card is updated later by the outbox."""

    def __init__(self, accept: Accept, now: Callable[[], datetime]) -> None:
        super().__init__()
        self._accept = accept
        self._now = now

    async def process(self, message: CallbackMessage) -> tuple[int, Any]:
        message_id = str(message.headers.message_id or "")
        data = message.data if isinstance(message.data, dict) else {}
        try:
            event = inbound.card_action(data, delivery_id=message_id, at=self._now())
        except MalformedCardCallback as exc:
            logger.warning("dingtalk stream card callback ignored: %s", exc, extra={"message_id": message_id})
            return AckMessage.STATUS_BAD_REQUEST, {}
        try:
            fresh = await self._accept(event)
        except Exception:
            logger.exception(
                "could not store a dingtalk card tap; asking for redelivery", extra={"message_id": message_id}
            )
            return AckMessage.STATUS_SYSTEM_EXCEPTION, {}
        logger.info(
            "dingtalk card tap accepted" if fresh else "dingtalk card tap repeated",
            extra={
                "event_id": event.event_id,
                "task_id": event.task_id,
                "staff_id": event.sender.account,
                "message_id": message_id,
            },
        )
        # An empty response leaves the card as it is; the outbox closes it after the decision.
        return AckMessage.STATUS_OK, {}


class RobotMessageHandler(CallbackHandler):  # type: ignore[misc]
    """Messages to the robot: parse, accept into the inbox, ack. Replies go through the outbox."""

    def __init__(self, accept: Accept, now: Callable[[], datetime]) -> None:
        super().__init__()
        self._accept = accept
        self._now = now

    async def process(self, message: CallbackMessage) -> tuple[int, Any]:
        message_id = str(message.headers.message_id or "")
        data = message.data if isinstance(message.data, dict) else {}
        event = inbound.robot_text(data, at=self._now())
        if event is None:
            logger.info(
                "dingtalk robot message ignored",
                extra={"message_id": message_id, "msgtype": data.get("msgtype")},
            )
            return AckMessage.STATUS_OK, "OK"
        try:
            fresh = await self._accept(event)
        except Exception:
            logger.exception(
                "could not store a dingtalk robot message; asking for redelivery",
                extra={"message_id": message_id},
            )
            return AckMessage.STATUS_SYSTEM_EXCEPTION, "retry"
        logger.info(
            "dingtalk robot message accepted" if fresh else "dingtalk robot message repeated",
            extra={"event_id": event.event_id, "staff_id": event.sender.account, "message_id": message_id},
        )
        return AckMessage.STATUS_OK, "OK"


class ContactEventHandler(EventHandler):  # type: ignore[misc]
    """Event subscription frames (事件订阅): a contact event (`user_*_org`, `org_dept_*`)
    schedules a re-read of each person or department it names; every event is acked."""

    def __init__(self, on_contact: ContactChanged) -> None:
        super().__init__()
        self._on_contact = on_contact

    async def process(self, event: EventMessage) -> tuple[int, str]:
        data = event.data if isinstance(event.data, dict) else {}
        event_type = str(event.headers.event_type or data.get("EventType") or "")
        delivery = str(event.headers.event_id or event.headers.message_id or "")
        rereads = inbound.contact_rereads({**data, "EventType": event_type}, delivery_id=delivery)
        try:
            for scope, ident, name, key in rereads or ():
                await self._on_contact(scope, ident, name, key)
        except Exception:
            logger.exception(
                "could not schedule a directory re-read; asking for redelivery", extra={"event_id": delivery}
            )
            return AckMessage.STATUS_SYSTEM_EXCEPTION, "retry"
        if rereads is None:
            logger.info("dingtalk stream event acknowledged", extra={"event_type": event_type})
        return AckMessage.STATUS_OK, "OK"


class _QuietPings(logging.Filter):
    """The SDK warns about every `ping` system frame as an unknown topic; pings are normal."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.WARNING and "topic=ping" in record.getMessage())


@dataclass
class StreamState:
    connected: bool = False
    connected_at: datetime | None = None
    connections: int = 0  # websocket sessions opened so far
    failures: int = 0  # consecutive failed attempts
    last_error: str | None = None

    def describe(self) -> tuple[bool, str]:
        if self.connected and self.connected_at is not None:
            return (
                True,
                f"connected since {self.connected_at.isoformat(timespec='seconds')} ({self.connections} sessions)",
            )
        if self.failures:
            return False, f"reconnecting after {self.failures} failed attempts: {self.last_error}"
        return False, "connecting"


class StreamConnection:
    """One stream client for the app: `run()` until cancelled, reconnecting by itself."""

    def __init__(
        self,
        settings: DingTalkSettings,
        http: httpx.AsyncClient,
        accept: Accept,
        *,
        now: Callable[[], datetime],
        max_backoff_s: float = 30.0,
        on_contact: ContactChanged | None = None,
    ) -> None:
        self._settings = settings
        self._http = http
        self._now = now
        self._max_backoff = max_backoff_s
        sdk_logger = logging.getLogger(f"{__name__}.sdk")
        if not any(isinstance(f, _QuietPings) for f in sdk_logger.filters):
            sdk_logger.addFilter(_QuietPings())
        self.client = dingtalk_stream.DingTalkStreamClient(
            dingtalk_stream.Credential(settings.app_key, settings.app_secret), logger=sdk_logger
        )
        self.card_handler = CardCallbackHandler(accept, now)
        self.robot_handler = RobotMessageHandler(accept, now)
        self.client.register_callback_handler(CARD_TOPIC, self.card_handler)
        self.client.register_callback_handler(ROBOT_TOPIC, self.robot_handler)
        self.event_handler = ContactEventHandler(on_contact) if on_contact is not None else None
        if self.event_handler is not None:  # directory sync is on: subscribe to every event
            self.client.register_all_event_handler(self.event_handler)
        self.state = StreamState()
        self._frames: set[asyncio.Task[None]] = set()

    async def open_ticket(self) -> tuple[str, str]:
        """Ask the gateway for a websocket endpoint and a one-time ticket."""
        body = {
            "clientId": self._settings.app_key,
            "clientSecret": self._settings.app_secret,
            "subscriptions": [
                *([{"type": "EVENT", "topic": "*"}] if self.event_handler is not None else []),
                *({"type": "CALLBACK", "topic": topic} for topic in self.client.callback_handler_map),
            ],
            "ua": f"oabot/{__version__} dingtalk-stream",
            "localIp": "",
        }
        resp = await self._http.post(f"{self._settings.api_base}{OPEN_PATH}", json=body)
        if resp.status_code != 200:
            raise ConnectionError(f"connections/open answered HTTP {resp.status_code}: {resp.text[:200]}")
        data = resp.json()
        if not isinstance(data, dict) or not data.get("endpoint") or not data.get("ticket"):
            raise ConnectionError("connections/open gave no endpoint and ticket")
        return str(data["endpoint"]), str(data["ticket"])

    async def run(self) -> None:
        self.client.pre_start()
        while True:
            try:
                endpoint, ticket = await self.open_ticket()
                await self._session(f"{endpoint}?ticket={quote_plus(ticket)}")
                self.state.failures, self.state.last_error = 0, None
                delay = 0.2  # the server closed (e.g. a `disconnect` frame): come back at once
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.state.failures += 1
                self.state.last_error = f"{type(exc).__name__}: {exc}"
                delay = min(self._max_backoff, 2 ** (self.state.failures - 1)) * (0.5 + random.random() / 2)
                logger.warning(
                    "dingtalk stream connection failed; retrying",
                    extra={
                        "error": self.state.last_error,
                        "retry_in_s": round(delay, 2),
                        "failures": self.state.failures,
                    },
                )
            finally:
                self.state.connected = False
            await asyncio.sleep(delay)

    async def _session(self, uri: str) -> None:
        async with websockets.connect(uri, open_timeout=10, ping_interval=30, ping_timeout=20) as ws:
            self.client.websocket = ws
            self.state.connected, self.state.connected_at = True, self._now()
            self.state.connections += 1
            self.state.failures, self.state.last_error = 0, None
            logger.info("dingtalk stream connected", extra={"sessions": self.state.connections})
            try:
                async for raw in ws:
                    try:
                        frame = json.loads(raw)
                    except ValueError:
                        logger.warning("dingtalk stream frame is not JSON; dropped")
                        continue
                    if isinstance(frame, dict):
                        self._spawn(frame)
            except websockets.exceptions.ConnectionClosed as exc:
                raise ConnectionError(f"websocket closed: {exc}") from exc
        logger.info("dingtalk stream session ended; reconnecting")

    def _spawn(self, frame: dict[str, Any]) -> None:
        # Each frame is routed (handler, then ack) in its own tracked task, as the SDK does,
        # so one slow frame never holds up the next one's ack.
        task = asyncio.create_task(self.client.background_task(frame))
        self._frames.add(task)
        task.add_done_callback(self._frames.discard)

    async def drain(self, timeout_s: float = 2.0) -> None:
        """Let in-flight frames finish (their acks), then cancel what is left."""
        if not self._frames:
            return
        _, pending = await asyncio.wait(set(self._frames), timeout=timeout_s)
        for task in pending:
            task.cancel()
