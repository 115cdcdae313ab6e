"""Notice card taps 已收到: one tap is one `Notices.tap` on the card the person was sent.

The card's task id names the notice and the person's card (`nt<notice id>-<n>`). A tap that
went through closes the card in place (nothing to say); a repeated or stale tap (already
acknowledged, defaulted at the deadline, recalled), or a tap on someone else's card, is answered
in words and changes nothing."""

from __future__ import annotations

from handlers.deps import ChatDeps
from handlers.events import CardAction
from handlers.router import Router

router = Router("notice_cards")

NOTICE_ACTIONS = frozenset({"notice_ack"})
UNAVAILABLE = "通知功能暂不可用，请稍后在通知列表中确认。"


@router.card_action(actions=NOTICE_ACTIONS)
async def on_notice_tap(event: CardAction, deps: ChatDeps) -> str | None:
    if deps.notices is None:
        return UNAVAILABLE
    return await deps.notices.tap(person=deps.user.id, task_id=event.task_id, channel=event.sender.platform)
