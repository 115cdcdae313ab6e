"""督办 card taps: a manager's 催办 and 代为处理 on a late task of their team.

One tap is one `Supervision.act` on the task and version the card showed (转交 and 查看 are
links, not taps). A repeated or stale tap, or one from someone who is not the holder's manager,
is answered in words and changes nothing."""

from __future__ import annotations

from approvals.errors import ApprovalError, RequestFinished, StaleTask, TaskAlreadyDecided
from approvals.model import Channel
from handlers.deps import ChatDeps
from handlers.events import CardAction
from handlers.router import Router
from notifications.messages import message_for
from notifications.wording import supervise_refused
from services.supervision import CARD_MOVES

router = Router("supervise_cards")


@router.card_action(actions=CARD_MOVES)
async def on_supervise_tap(event: CardAction, deps: ChatDeps) -> str | None:
    if deps.supervision is None:
        return supervise_refused("督办操作暂不可用")
    try:
        return await deps.supervision.act(
            deps.user,
            event.task_id,
            event.version,
            CARD_MOVES[event.action],
            comment=event.comment,
            channel=Channel(event.sender.platform),
        )
    except (TaskAlreadyDecided, StaleTask, RequestFinished) as exc:
        return supervise_refused(f"这条待办已有变化（{message_for(exc)}）")
    except ApprovalError as exc:
        return supervise_refused(message_for(exc))
