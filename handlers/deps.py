"""What a chat handler may use: the services it calls, the organisation's clock and timezone,
and the sender as an org user. Built per event by `handlers.chat.ChatService`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from org.model import User
from services.approvals import Workflow
from services.chat_todo import ChatTodo
from services.checkins import CheckinService
from services.notices import Notices
from services.supervision import Supervision


@dataclass(frozen=True)
class ChatDeps:
    workflow: Workflow
    tz: ZoneInfo
    now: Callable[[], datetime]
    user: User  # the sender, an active person of the organisation
    todo: ChatTodo  # numbered 待办 and approving by number (同意 1 3 5, 全部同意)
    checkins: CheckinService | None = None  # field check-ins (locations, 打卡); None when off
    supervision: Supervision | None = None  # a manager's 督办 card taps (催办, 代为处理)
    notices: Notices | None = None  # notice card taps (已收到)
