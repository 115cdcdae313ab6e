"""The delivery interface: how an outbox message reaches a person on one channel.

Implementations: `notifications.console.ConsoleDelivery` (the embedded default's browser
chat); the WeCom and DingTalk adapters implement the same contract. A delivery must be
idempotent per outbox id: the dispatcher may hand the same message over again after a crash.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from notifications.wording import OPEN_LINK_LABEL
from org.model import User


@dataclass(frozen=True)
class OutgoingMessage:
    outbox_id: int
    kind: str
    recipient: str
    request_id: str | None
    task_id: str | None
    payload: dict[str, Any]

    def text(self) -> str:
        """The message as chat text: its words, then the recipient's own link to the page when it
        carries one (a result, a CC, a progress note), so a plain text still opens the request."""
        words = str(self.payload.get("text") or "")
        link = self.payload.get("link")
        if isinstance(link, str) and link and link not in words:
            return f"{words}\n{OPEN_LINK_LABEL}：{link}" if words else link
        return words


class DeliveryError(Exception):
    """Sending failed. `retryable` False sends the row straight to `dead`. `throttled_for_s`: the
    platform refused because of its frequency limits; the row waits that long and is tried again
    without using up one of its attempts (a burst must never kill a message)."""

    def __init__(self, message: str, *, retryable: bool = True, throttled_for_s: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable or throttled_for_s is not None
        self.throttled_for_s = throttled_for_s


class Delivery(ABC):
    name: str = "delivery"

    @abstractmethod
    def reaches(self, user: User) -> bool:
        """Whether this channel can reach the user (e.g. they have an account on it)."""

    @abstractmethod
    async def deliver(self, message: OutgoingMessage, user: User) -> None:
        """Send it, or raise DeliveryError."""
