"""Card taps: one tap is one engine action on the task and version the card showed.

A tap that needs more than a button (an opinion the step requires) is answered with the
person's own link to the request page, where they can write it."""

from __future__ import annotations

from approvals.engine import Action
from approvals.errors import (
    ApprovalError,
    NotAssignee,
    OpinionRequired,
    RequestFinished,
    StaleTask,
    TaskAlreadyDecided,
)
from approvals.model import ActionKind, Channel
from handlers.deps import ChatDeps
from handlers.events import CardAction
from handlers.router import Router
from notifications.messages import message_for
from notifications.wording import opinion_needed

router = Router("cards")

CARD_ACTIONS = {ActionKind.APPROVE, ActionKind.REJECT, ActionKind.ACKNOWLEDGE}


@router.card_action()
async def on_card_action(event: CardAction, deps: ChatDeps) -> str | None:
    try:
        kind = ActionKind(event.action)
    except ValueError:
        return "这个按钮已失效，请在待办列表中重新打开。"
    if kind not in CARD_ACTIONS:
        return "这个操作请在网页中完成。"
    request_id = event.task_id.rsplit("-", 1)[0]
    try:
        await deps.workflow.act(
            request_id=request_id,
            action=Action(
                kind=kind,
                actor=deps.user.id,
                task_id=event.task_id,
                version=event.version,
                comment=event.comment,
                channel=Channel(event.sender.platform),
            ),
        )
    except (TaskAlreadyDecided, StaleTask, RequestFinished) as exc:
        return f"已处理：{message_for(exc)}"
    except NotAssignee:
        return "这条审批不是由您处理的，您的点击没有产生任何变更。"
    except OpinionRequired as exc:
        link = await deps.workflow.page_link(deps.user.id, request_id)
        return opinion_needed(str(exc.context["step_name"]), link)
    except ApprovalError as exc:
        return message_for(exc)
    return None
