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


_TYPES: dict[str, type] = {
    "card_action": CardAction,
    "text": TextMessage,
    "location": LocationShared,
    "enter_chat": EnterChat,
}
_NAMES = {v: k for k, v in _TYPES.items()}


def event_kind(event: Event) -> str:
    return _NAMES[type(event)]


def event_to_dict(event: Event) -> dict[str, object]:
    """JSON-safe form for the durable inbox."""
    out: dict[str, object] = {"type": event_kind(event)}
    for name in event.__dataclass_fields__:
        value = getattr(event, name)
        if isinstance(value, Sender):
            value = {"platform": value.platform, "account": value.account}
        elif isinstance(value, datetime):
            value = value.isoformat()
        out[name] = value
    return out


def event_from_dict(data: dict[str, object]) -> Event:
    kind = str(data["type"])
    cls = _TYPES[kind]
    values = {k: v for k, v in data.items() if k != "type"}
    sender = values["sender"]
    assert isinstance(sender, dict)
    values["sender"] = Sender(platform=str(sender["platform"]), account=str(sender["account"]))
    if isinstance(values.get("at"), str):
        values["at"] = datetime.fromisoformat(str(values["at"]))
    return cls(**values)  # type: ignore[no-any-return]
