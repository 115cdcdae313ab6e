"""The one base of every refusal by the domain layers (approvals, check-ins, services).

A refusal carries a stable `code` (what the REST API reports), a `reason` naming the exact
refusal (the key of its wording), its context as attributes, and an HTTP-neutral `Category`.
It holds no words people read: `notifications.messages.message_for` says a refusal in
Chinese. It lives at the bottom layer so every layer above can derive its own errors from it.
Nothing here knows about HTTP or chat: the error middleware maps a category to a status and
the chat handlers map an error to a reply.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class Category(StrEnum):
    """What kind of refusal it is, independent of how an edge shows it."""

    REFUSED = "refused"  # the request cannot be done as asked
    INVALID = "invalid"  # the input is wrong
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"  # this person may not do this
    CONFLICT = "conflict"  # the state changed or forbids it now
    GONE = "gone"  # it existed but has expired
    TOO_MANY = "too_many"  # too soon after the last time
    UNAVAILABLE = "unavailable"  # busy; trying again later may work


class DomainError(Exception):
    """Base of every domain refusal. A refusal changes nothing.

    `reason` defaults to the class's `code`; `context` is what the refusal is about (the REST
    error's `details`); `params` is the context plus `shown`, values only the wording needs
    (a person's name, a local time).
    """

    code = "refused"
    category = Category.REFUSED

    def __init__(
        self, reason: str | None = None, /, *, shown: Mapping[str, Any] | None = None, **context: Any
    ) -> None:
        self.reason = reason or self.code
        super().__init__(self.reason)
        self.context = context
        self.params: dict[str, Any] = {**context, **(shown or {})}
