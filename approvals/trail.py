"""The tamper-evident trail 留痕: each request's events form a SHA-256 hash chain.

`hash = sha256(prev_hash || canonical JSON of the event's content)`. Changing, removing or
reordering any stored event breaks every hash after it, which `verify_chain` reports.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
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
