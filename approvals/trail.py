"""The tamper-evident trail 留痕: each request's events form a SHA-256 hash chain, keyed by a
server secret that is kept outside the database.

`hash = sha256(prev_hash || canonical JSON of the event's content)`. Changing, removing or
reordering any stored event breaks every hash after it, which `verify_chain` reports. Anyone
with database access can recompute such a chain, so each stored event also carries
`mac = HMAC-SHA256(key, "event" | hash)` and the request row its chain head
`head_mac = HMAC-SHA256(key, "head" | request id | count | last hash)`: without the key, an
edited, reordered, truncated or rewritten chain no longer matches them (`verify_sealed`).
A key is named by its id (a fingerprint of the secret), stored beside every MAC, so entries
sealed before a key rotation still verify with the retired key (`TrailKeys.old`).

Pure: the key comes in as an argument; reading or generating it is the caller's business.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from approvals.model import TrailEvent

GENESIS = "0" * 64


def _canonical_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_content(e: TrailEvent) -> dict[str, Any]:
    return {
        "request_id": e.request_id,
        "seq": e.seq,
        "kind": e.kind,
        "at": _canonical_time(e.at),
        "actor": e.actor,
        "acting_for": e.acting_for,
        "channel": str(e.channel),
        "task_id": e.task_id,
        "step_index": e.step_index,
        "before": e.before,
        "after": e.after,
        "comment": e.comment,
        "data": e.data,
    }


def compute_hash(prev_hash: str, e: TrailEvent) -> str:
    body = json.dumps(
        event_content(e), sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    )
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def seal(e: TrailEvent, prev_hash: str) -> TrailEvent:
    prev = prev_hash or GENESIS
    return replace(e, prev_hash=prev, hash=compute_hash(prev, e))


@dataclass(frozen=True)
class ChainProblem:
    request_id: str
    seq: int
    message: str


def verify_chain(events: Iterable[TrailEvent]) -> list[ChainProblem]:
    """Check one request's events (in seq order). Returns every problem found."""
    problems: list[ChainProblem] = []
    prev = GENESIS
    expected_seq = 1
    for e in events:
        if e.seq != expected_seq:
            problems.append(
                ChainProblem(e.request_id, e.seq, f"expected event #{expected_seq}, found #{e.seq}")
            )
            expected_seq = e.seq
        if e.prev_hash != prev:
            problems.append(ChainProblem(e.request_id, e.seq, "previous-hash link does not match"))
        if compute_hash(e.prev_hash, e) != e.hash:
            problems.append(ChainProblem(e.request_id, e.seq, "content does not match its hash (edited?)"))
        prev = e.hash
        expected_seq += 1
    return problems


# -- the keyed seal -----------------------------------------------------------------------
@dataclass(frozen=True)
class TrailKey:
    """One trail key: its secret and its id (a fingerprint that reveals nothing of it)."""

    secret: bytes = field(repr=False)
    id: str = ""

    @classmethod
    def of(cls, secret: bytes) -> TrailKey:
        if len(secret) < 16:
            raise ValueError("a trail key needs at least 16 bytes")
        fingerprint = hmac.new(secret, b"oabot trail key id", hashlib.sha256).hexdigest()[:16]
        return cls(secret=secret, id=fingerprint)


@dataclass(frozen=True)
class TrailKeys:
    """The key new entries are sealed with, and retired keys older entries may carry."""

    current: TrailKey
    old: tuple[TrailKey, ...] = ()

    def find(self, key_id: str | None) -> TrailKey | None:
        for k in (self.current, *self.old):
            if k.id == key_id:
                return k
        return None


def _mac(key: TrailKey, *parts: str) -> str:
    return hmac.new(key.secret, "|".join(parts).encode("utf-8"), hashlib.sha256).hexdigest()


def event_mac(key: TrailKey, e: TrailEvent) -> str:
    """The MAC of one event: over its hash, which covers its content and every earlier event."""
    return _mac(key, "event", e.request_id, str(e.seq), e.hash)


def head_mac(key: TrailKey, request_id: str, count: int, last_hash: str) -> str:
    """The MAC of a request's chain head (how many events, and the last one's hash)."""
    return _mac(key, "head", request_id, str(count), last_hash)


@dataclass(frozen=True)
class Anchor:
    """A request's chain head as its row stores it (`key_id`/`mac` None: never anchored)."""

    request_id: str
    count: int
    last_hash: str
    key_id: str | None
    mac: str | None


def _event_mac_problems(events: Sequence[TrailEvent], keys: TrailKeys) -> list[ChainProblem]:
    problems: list[ChainProblem] = []
    keyed = False
    for e in events:
        if e.mac is None:
            if keyed:
                problems.append(
                    ChainProblem(e.request_id, e.seq, "not sealed with the trail key (added later?)")
                )
            continue
        keyed = True
        key = keys.find(e.key_id)
        if key is None:
            problems.append(
                ChainProblem(
                    e.request_id,
                    e.seq,
                    f"sealed with key {e.key_id}, which is not configured (OABOT_TRAIL_OLD_KEYS)",
                )
            )
        elif not hmac.compare_digest(event_mac(key, e), e.mac):
            problems.append(ChainProblem(e.request_id, e.seq, "the keyed seal does not match (rewritten?)"))
    return problems


def verify_sealed(events: Sequence[TrailEvent], anchor: Anchor, keys: TrailKeys) -> list[ChainProblem]:
    """Everything wrong with one request's stored trail: the hash chain, each event's keyed
    seal, and the anchored chain head (so a cut-off tail or a rewritten chain shows)."""
    rid = anchor.request_id
    problems = verify_chain(events)
    problems += _event_mac_problems(events, keys)
    last = events[-1] if events else None
    if last is None or (anchor.count, anchor.last_hash) != (last.seq, last.hash):
        problems.append(
            ChainProblem(
                rid, anchor.count, "the request's last event does not match its trail (events removed?)"
            )
        )
    if anchor.mac is None:
        if any(e.mac is not None for e in events):
            problems.append(
                ChainProblem(rid, anchor.count, "the chain head is not anchored (anchor removed?)")
            )
        else:
            problems.append(ChainProblem(rid, anchor.count, LEGACY))
        return problems
    key = keys.find(anchor.key_id)
    if key is None:
        problems.append(
            ChainProblem(
                rid,
                anchor.count,
                f"anchored with key {anchor.key_id}, which is not configured (OABOT_TRAIL_OLD_KEYS)",
            )
        )
    elif not hmac.compare_digest(head_mac(key, rid, anchor.count, anchor.last_hash), anchor.mac):
        problems.append(
            ChainProblem(
                rid, anchor.count, "the anchored chain head does not match (events removed or rewritten?)"
            )
        )
    return problems


# A trail with no keyed seal at all: written before the upgrade (`oabot audit rekey` anchors it,
# once), or stripped of its seals since; which of the two, the database alone cannot tell.
LEGACY = "not sealed with the trail key: a legacy trail (run `oabot audit rekey` once after upgrading) or stripped of its seals"
