"""The one entry point for chat events from any platform: identify, route, reply.

The inbox worker calls `ChatService.process(event)` for every stored callback (the inbox already
dropped repeated deliveries); the console, whose "callback" is the browser's POST, calls
`handle(event)`, which asks the injected `first_delivery` check first. The engine's task-version
check stands behind both for double taps that arrive as separate deliveries.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from handlers import cards, checkins, commands, notice_cards, supervise_cards
from handlers.deps import ChatDeps
from handlers.events import Event
from handlers.router import Router
from services.approvals import Workflow
from services.chat_todo import ChatTodo
from services.checkins import CheckinService
from services.notices import Notices
from services.supervision import Supervision

logger = logging.getLogger(__name__)

NOT_IN_DIRECTORY = "您好，您的账号不在本单位通讯录中，暂时无法使用审批功能。请联系办公室添加后再试。"

# True the first time an event (platform, event id) is seen; False for a repeat delivery.
FirstDelivery = Callable[[Event], Awaitable[bool]]


def root_router() -> Router:
    root = Router("root")
    root.include(cards.router, commands.router, checkins.router, supervise_cards.router, notice_cards.router)
    return root


class ChatService:
    def __init__(
        self,
        workflow: Workflow,
        first_delivery: FirstDelivery,
        tz: ZoneInfo,
        now: Callable[[], datetime],
        *,
        todo: ChatTodo,
        checkins: CheckinService | None = None,
        supervision: Supervision | None = None,
        notices: Notices | None = None,
    ) -> None:
        self.workflow = workflow
        self.first_delivery = first_delivery
        self.tz = tz
        self.now = now
        self.todo = todo
        self.checkins = checkins
        self.supervision = supervision
        self.notices = notices
        self.router = root_router()

    async def handle(self, event: Event) -> str | None:
        """Dedupe and process at once (the console)."""
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
            workflow=self.workflow,
            tz=self.tz,
            now=self.now,
            user=user,
            todo=self.todo,
            checkins=self.checkins,
            supervision=self.supervision,
            notices=self.notices,
        )
        reply = await handler(event, deps)
        if reply:
            await self.workflow.tell(user.id, reply)
        return reply
