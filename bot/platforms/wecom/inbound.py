"""Decrypted WeCom callback XML → a neutral `handlers.events` event. Pure: no I/O.

Event ids are what makes a retried callback a repeat and two different taps two taps
(WeCom re-sends a callback it got no answer to within 5 s, up to 3 times, unchanged):
- messages (text, location): `msg:<MsgId>`, WeCom's own unique id;
- LOCATION reports: `loc:<FromUserName>:<CreateTime>` (WeCom's rule for events without MsgId);
- enter_agent: `enter:<FromUserName>:<CreateTime>`;
- template_card_event: `card:<task>:<digest of FromUserName, TaskId, EventKey, ResponseCode>`.
  ResponseCode is fresh for every click, so two taps in the same second stay two events (the
  engine's version check then makes the second one a no-op), while a retry of one click is
  byte-for-byte the same and collapses into one. CreateTime alone would merge distinct taps.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.parsers import expat

from bot.platforms.wecom.cards import parse_card_task_id
from handlers.events import CardAction, EnterChat, Event, LocationShared, Sender, TextMessage

PLATFORM = "wecom"


class MalformedMessage(ValueError):
    """XML that is not a WeCom message, or a field that does not hold what it must."""


@dataclass(frozen=True)
class CardClick:
    """A click's response code, for updating the card it came from (single use, 72 h)."""

    card_id: str
    account: str
    response_code: str


@dataclass(frozen=True)
class Inbound:
    event: Event
    click: CardClick | None = None


class _Refused(Exception):
    """A DTD or entity declaration: WeCom never sends one, so it is refused, never expanded."""


def _refuse_declaration(*_args: object) -> None:
    raise _Refused("DTDs and entity declarations are not accepted")


def _refuse_external(*_args: object) -> int:
    raise _Refused("external entities are not accepted")


class _Fields:
    """expat handlers collecting the root's direct children as {tag: text before any sub-element}."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.root = ""
        self._depth = 0
        self._tag = ""
        self._open = False
        self._texts: list[str] = []

    def start(self, tag: str, _attrs: object) -> None:
        self._depth += 1
        if self._depth == 1:
            self.root = tag
        elif self._depth == 2:
            self._tag, self._open = tag, True
            self._texts.clear()
        else:
            self._open = False  # text after a sub-element is not the child's text

    def text(self, chunk: str) -> None:
        if self._open:
            self._texts.append(chunk)

    def end(self, _tag: str) -> None:
        if self._depth == 2:
            self.fields[self._tag] = "".join(self._texts).strip()
            self._open = False
        self._depth -= 1


def parse_xml(data: bytes | str) -> dict[str, str]:
    """The `<xml>` root's direct children as {tag: text}; DTDs and entities are refused.

    Read with expat's handlers straight into the dict (no element tree, no parser subclass to
    set up: this runs twice per callback on the intake path). Each child's text is what comes
    before its first sub-element, stripped, as ElementTree's `.text`; a repeated tag keeps its
    last value. A DOCTYPE, an entity declaration or an external reference stops the parse, so
    nothing is ever expanded or fetched; an undeclared entity is expat's own error."""
    found = _Fields()
    parser = expat.ParserCreate()
    parser.StartElementHandler = found.start
    parser.EndElementHandler = found.end
    parser.CharacterDataHandler = found.text
    parser.StartDoctypeDeclHandler = _refuse_declaration
    parser.EntityDeclHandler = _refuse_declaration
    parser.UnparsedEntityDeclHandler = _refuse_declaration
    parser.ExternalEntityRefHandler = _refuse_external
    try:
        parser.Parse(data, True)
    except (expat.ExpatError, _Refused, ValueError) as exc:
        raise MalformedMessage(f"not well-formed XML: {exc}") from exc
    if found.root != "xml":
        raise MalformedMessage(f"root element is <{found.root}>, expected <xml>")
    return found.fields


def _required(fields: dict[str, str], name: str) -> str:
    value = fields.get(name, "")
    if not value:
        raise MalformedMessage(f"{name} is missing")
    return value


def _float(fields: dict[str, str], name: str, bound: float) -> float:
    raw = _required(fields, name)
    try:
        value = float(raw)
    except ValueError as exc:
        raise MalformedMessage(f"{name}={raw!r} is not a number") from exc
    if not math.isfinite(value) or abs(value) > bound:
        raise MalformedMessage(f"{name}={raw!r} is out of range")
    return value


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:32]


def to_inbound(fields: dict[str, str]) -> Inbound | None:
    """The neutral event for a decrypted message; None for kinds oabot does not handle."""
    account = _required(fields, "FromUserName")
    created = _required(fields, "CreateTime")
    # Unix seconds; 11 digits reach the year 5138, 20 overflow a datetime.
    if not (created.isascii() and created.isdigit()) or len(created) > 11:
        raise MalformedMessage(f"CreateTime={created[:24]!r} is not a time")
    at = datetime.fromtimestamp(int(created), UTC)
    sender = Sender(PLATFORM, account)
    msg_type = fields.get("MsgType", "")
    msg_id = fields.get("MsgId", "")
    fallback_id = f"raw:{_digest(*(f'{k}={v}' for k, v in sorted(fields.items())))}"
    if msg_type == "text":
        return Inbound(
            TextMessage(sender, f"msg:{msg_id}" if msg_id else fallback_id, fields.get("Content", ""), at=at)
        )
    if msg_type == "location":
        return Inbound(
            LocationShared(
                sender,
                f"msg:{msg_id}" if msg_id else fallback_id,
                lat=_float(fields, "Location_X", 90),
                lng=_float(fields, "Location_Y", 180),
                label=fields.get("Label") or None,
                at=at,
            )
        )
    if msg_type != "event":
        return None
    event = fields.get("Event", "")
    if event == "LOCATION":
        precision = fields.get("Precision")
        return Inbound(
            LocationShared(
                sender,
                f"loc:{account}:{created}",
                lat=_float(fields, "Latitude", 90),
                lng=_float(fields, "Longitude", 180),
                accuracy_m=_float(fields, "Precision", 1e7) if precision else None,
                at=at,
            )
        )
    if event == "enter_agent":
        return Inbound(EnterChat(sender, f"enter:{account}:{created}"))
    if event == "template_card_event":
        card_id = _required(fields, "TaskId")
        key = parse_card_task_id(card_id)
        if key is None:
            return None  # a card some other system sent through this app
        action = _required(fields, "EventKey")
        code = fields.get("ResponseCode", "")
        if len(code) > 256:  # WeCom's codes are short; the card table keeps 256 characters
            raise MalformedMessage("ResponseCode is too long")
        event_id = f"card:{key.task_id}:{_digest(account, card_id, action, code or created)}"
        click = CardClick(card_id=card_id, account=account, response_code=code) if code else None
        return Inbound(
            CardAction(sender, event_id, task_id=key.task_id, version=key.version, action=action, at=at),
            click,
        )
    return None


# -- contact changes (通讯录变更, Event=change_contact) -----------------------------------------
_PERSON_CHANGES = frozenset({"create_user", "update_user", "delete_user"})
_DEPARTMENT_CHANGES = frozenset({"create_party", "update_party", "delete_party"})


@dataclass(frozen=True)
class ContactChange:
    """Who or what to re-read from the directory: never what the event says about them."""

    scope: str  # person | department
    ident: str  # WeCom userid or department id
    event: str  # the ChangeType, for the log and the sync record
    key: str  # unique per delivery of this event: a retry repeats it


def contact_changes(fields: dict[str, str]) -> list[ContactChange] | None:
    """The re-reads a `change_contact` event asks for; None when it is not one. An update that
    renamed a userid re-reads both the old and the new one."""
    if fields.get("MsgType") != "event" or fields.get("Event") != "change_contact":
        return None
    change = fields.get("ChangeType", "")
    created = fields.get("CreateTime", "")
    if change in _PERSON_CHANGES:
        ids = [fields.get("UserID", ""), fields.get("NewUserID", "")]
        scope = "person"
    elif change in _DEPARTMENT_CHANGES:
        ids = [fields.get("Id", "")]
        scope = "department"
    else:
        return []
    return [
        ContactChange(scope, ident, change, _digest(change, ident, created))
        for ident in dict.fromkeys(i for i in ids if i)
    ]
