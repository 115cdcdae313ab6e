"""The one entry point for chat events from any platform: dedupe, identify, route, reply.

Platform adapters call `ChatService.handle(event)` after verifying and decoding a callback.
Retries of the same delivery (same event id) are dropped here; the engine's task-version check
stands behind that for double taps that arrive as separate deliveries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from handlers import cards, checkins, commands
from handlers.events import Event
from handlers.router import Router
from org.model import User
from services.approvals import Workflow
from storage.kv import KeyValueStore, KVUnavailable

if TYPE_CHECKING:
    from services.checkins import CheckinService

logger = logging.getLogger(__name__)

DEDUPE_TTL_S = 15 * 60  # platforms retry for minutes; keep keys at least 10 minutes

NOT_IN_DIRECTORY = "您好，您的账号不在本单位通讯录中，暂时无法使用审批功能。请联系办公室添加后再试。"


@dataclass
class ChatDeps:
    workflow: Workflow
    kv: KeyValueStore
    tz: ZoneInfo
    now: Callable[[], datetime]
    user: User | None = None  # filled per event: the sender as an org user
    checkins: CheckinService | None = None  # field check-ins (locations, 打卡)


def root_router() -> Router:
    root = Router("root")
    root.include(cards.router, commands.router, checkins.router)
    return root


class ChatService:
    def __init__(
        self,
        workflow: Workflow,
        kv: KeyValueStore,
        tz: ZoneInfo,
        now: Callable[[], datetime],
        *,
        checkins: CheckinService | None = None,
    ) -> None:
        self.workflow = workflow
        self.kv = kv
        self.tz = tz
        self.now = now
        self.checkins = checkins
        self.router = root_router()

    async def first_delivery(self, event: Event) -> bool:
        key = f"dedupe:{event.sender.platform}:{event.event_id}"
        try:
            return await self.kv.set_if_absent(key, "1", DEDUPE_TTL_S)
        except KVUnavailable:
            # Without the store the engine's version check still refuses a second decision.
            logger.warning(
                "dedupe store unavailable; relying on task versions", extra={"event_id": event.event_id}
            )
            return True

    async def handle(self, event: Event) -> str | None:
        """Dedupe and process at once (the console, whose 'callback' is the browser's POST)."""
        if not await self.first_delivery(event):
            logger.info(
                "duplicate delivery dropped",
                extra={"event_id": event.event_id, "platform": event.sender.platform},
            )
            return None
        return await self.process(event)

    async def process(self, event: Event) -> str | None:
        """Identify the sender, route the event, queue the reply. Platforms call this from the inbox."""
        org = await self.workflow.org()
        user = (
            org.user(event.sender.account)
            if event.sender.platform == "console"
            else org.user_by_account(event.sender.platform, event.sender.account)
        )
        if user is None or not user.active:
            logger.info(
                "event from someone not in the directory",
                extra={"platform": event.sender.platform, "account": event.sender.account},
            )
            if event.sender.platform != "console":
                await self.workflow.tell_account(
                    event.sender.platform, event.sender.account, NOT_IN_DIRECTORY
                )
            return NOT_IN_DIRECTORY
        handler = self.router.resolve(event)
        if handler is None:
            return None
        deps = ChatDeps(
            workflow=self.workflow, kv=self.kv, tz=self.tz, now=self.now, user=user, checkins=self.checkins
        )
        reply = await handler(event, deps)
        if reply:
            await self.workflow.tell(user.id, reply)
        return reply
