"""Platform-neutral inbound events. Adapters (console, WeCom, DingTalk) produce these."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Sender:
    platform: str  # console | wecom | dingtalk
    account: str  # the platform's user id (for the console: the org user id)


@dataclass(frozen=True)
class CardAction:
    sender: Sender
    event_id: str  # unique per delivery of one tap; platforms' retries repeat it
    task_id: str
    version: int
    action: str  # approve | reject | acknowledge | ...
    comment: str | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class TextMessage:
    sender: Sender
    event_id: str
    text: str
    at: datetime | None = None


@dataclass(frozen=True)
class LocationShared:
    sender: Sender
    event_id: str
    lat: float
    lng: float
    accuracy_m: float | None = None
    label: str | None = None
    coord_system: str = "gcj02"
    at: datetime | None = None


@dataclass(frozen=True)
class EnterChat:
    sender: Sender
    event_id: str


Event = CardAction | TextMessage | LocationShared | EnterChat
