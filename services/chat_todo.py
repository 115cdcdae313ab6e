"""Numbered 待办 in chat, and approving by number: `同意 1 3 5`, `全部同意`.

`待办` lists a person's open tasks with numbers and remembers, for 30 minutes, which task (and
which version of it) each number stood for, in the key-value store; a later `同意 …` approves
exactly those through `WorkspaceLists.batch_approve`, so a task that changed since the list was
shown is refused by its version check rather than approved blind. Parsing the chat text and the
wording of replies belong to `handlers.commands`; this module decides nothing about approvals.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from approvals.model import Channel
from org.model import User
from services.workspace_lists import BatchReport, ListItem, WorkspaceLists
from storage.kv import KeyValueStore, KVUnavailable

logger = logging.getLogger(__name__)

NUMBERS_TTL_S = 30 * 60
SHOWN = 10  # tasks numbered in one 待办 reply
_KEY = "chat-todo:"


@dataclass(frozen=True)
class NumberedTodo:
    items: list[ListItem]  # item n-1 is number n
    total: int  # every open task, shown or not


@dataclass(frozen=True)
class NumberedApproval:
    """What `同意 …` did: the report for the numbers it knew, in the order asked, and the
    numbers it did not know. `expired` when no numbered list is remembered."""

    numbers: list[int] = field(default_factory=list)
    report: BatchReport = field(default_factory=BatchReport)
    unknown: list[int] = field(default_factory=list)
    expired: bool = False


class ChatTodo:
    def __init__(self, lists: WorkspaceLists, kv: KeyValueStore) -> None:
        self._lists = lists
        self._kv = kv

    async def numbered(self, user: User) -> NumberedTodo:
        """The first tasks of 待我处理, numbered from 1, remembered for the follow-up."""
        items, total = await self._lists.todo(user, limit=SHOWN)
        remembered = [[i.task_id, i.version] for i in items if i.task_id is not None]
        try:
            if remembered:
                await self._kv.set(_KEY + user.id, json.dumps(remembered), ttl_s=NUMBERS_TTL_S)
            else:
                await self._kv.delete(_KEY + user.id)
        except KVUnavailable:
            logger.warning(
                "todo numbers not remembered: key-value store unavailable", extra={"user": user.id}
            )
        return NumberedTodo(items, total)

    async def approve(
        self, user: User, numbers: Sequence[int] | None, opinion: str | None, *, channel: Channel
    ) -> NumberedApproval:
        """Approve the numbered tasks (`None`: every number of the last list)."""
        try:
            raw = await self._kv.get(_KEY + user.id)
        except KVUnavailable:
            raw = None
        if raw is None:
            return NumberedApproval(expired=True)
        remembered: list[tuple[str, int]] = [(str(t), int(v)) for t, v in json.loads(raw)]
        asked = list(dict.fromkeys(numbers)) if numbers is not None else list(range(1, len(remembered) + 1))
        known = [n for n in asked if 1 <= n <= len(remembered)]
        report = await self._lists.batch_approve(
            user, [remembered[n - 1] for n in known], opinion, channel=channel
        )
        return NumberedApproval(numbers=known, report=report, unknown=[n for n in asked if n not in known])
