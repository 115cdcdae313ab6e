"""Document numbers 文号 of outgoing documents 发文: the pattern, the prefix and when one is due.

A number reads like `办发〔2026〕7号`: a pattern such as `{prefix}〔{year}〕{seq}号` filled with
the template's prefix (or a form field's), the year of registration in the organisation's
timezone, and the sequence of that prefix in that year (`{seq:03}` pads it with zeros). The
registrar's step (登记编号) assigns it when it is approved; a document that ends withdrawn,
terminated or rejected keeps its number as void, never reused. The counter and the issued
numbers are stored by `storage.doc_number_store`; this module decides and formats only. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from approvals.definitions import Numbering
from approvals.errors import ApprovalError
from approvals.model import Request, RequestStatus, TrailEvent
from org.errors import Category

DEFAULT_PATTERN = "{prefix}〔{year}〕{seq}号"
PATTERN_MAX = 60
PREFIX_MAX = 20
SLOTS = ("prefix", "year", "seq")
_SLOT = re.compile(r"\{(\w*)(?::([^{}]*))?\}")
_PAD = re.compile(r"0[2-9]")
# How a request ends that voids its number (an approved document keeps it as issued).
VOIDING = frozenset({RequestStatus.WITHDRAWN, RequestStatus.TERMINATED, RequestStatus.REJECTED})


class NumberStatus(StrEnum):
    ISSUED = "issued"
    VOID = "void"  # the document was withdrawn or ended: the number stays taken


class PatternInvalid(ValueError):
    """A number pattern that cannot be used; the message says why (for the operator)."""


class PrefixInvalid(ApprovalError):
    """The prefix a document would be numbered with is empty or unusable."""

    code = "doc_prefix_invalid"
    category = Category.INVALID


@dataclass(frozen=True)
class Pattern:
    """A checked pattern: literal text and the three slots, `{seq}` with its zero padding."""

    text: str
    pad: int  # 0: as is

    def format(self, *, prefix: str, year: int, seq: int) -> str:
        values = {"prefix": prefix, "year": str(year), "seq": str(seq).zfill(self.pad)}
        return _SLOT.sub(lambda m: values[m.group(1)], self.text)


def parse_pattern(text: str) -> Pattern:
    """Check a pattern: `{prefix}`, `{year}` and `{seq}` (or `{seq:0N}`, N from 2 to 9) once
    each, no other braces, at most PATTERN_MAX characters. PatternInvalid says what is wrong."""
    if not text or not text.strip():
        raise PatternInvalid("the number pattern is empty")
    if len(text) > PATTERN_MAX:
        raise PatternInvalid(f"the number pattern is longer than {PATTERN_MAX} characters")
    found = [(m.group(1), m.group(2)) for m in _SLOT.finditer(text)]
    if "{" in _SLOT.sub("", text) or "}" in _SLOT.sub("", text):
        raise PatternInvalid("a brace in the number pattern is not one of {prefix}, {year}, {seq}")
    unknown = [name for name, _ in found if name not in SLOTS]
    if unknown:
        raise PatternInvalid(
            f"unknown slot {{{unknown[0]}}} in the number pattern (use {{prefix}}, {{year}}, {{seq}})"
        )
    for slot in SLOTS:
        count = sum(name == slot for name, _ in found)
        if count != 1:
            raise PatternInvalid(f"the number pattern needs {{{slot}}} exactly once (found {count})")
    pad = 0
    for name, spec in found:
        if spec is None:
            continue
        if name != "seq" or not _PAD.fullmatch(spec):
            raise PatternInvalid(
                f"{{{name}:{spec}}}: only {{seq}} takes a width, written {{seq:03}} (2 to 9 digits)"
            )
        pad = int(spec[1:])
    return Pattern(text=text, pad=pad)


def check_prefix(prefix: str) -> str | None:
    """What is wrong with a prefix, or None: not empty, at most PREFIX_MAX characters, no braces,
    no line breaks."""
    if not prefix.strip():
        return "empty"
    if len(prefix) > PREFIX_MAX:
        return "too_long"
    if any(c in prefix for c in "{}\r\n\t"):
        return "bad_character"
    return None


def prefix_of(numbering: Numbering, form: Mapping[str, Any]) -> str:
    """The prefix a document with this form is numbered under; PrefixInvalid when unusable."""
    field = numbering.prefix_field
    given = form.get(field) if field else None
    prefix = str(given).strip() if given not in (None, "") else numbering.prefix.strip()
    problem = check_prefix(prefix)
    if problem == "empty":
        raise PrefixInvalid("doc_prefix_invalid.empty", prefix=prefix)
    if problem == "too_long":
        raise PrefixInvalid("doc_prefix_invalid.too_long", prefix=prefix, most=PREFIX_MAX)
    if problem is not None:
        raise PrefixInvalid("doc_prefix_invalid.bad_character", prefix=prefix)
    return prefix


def number_year(now: datetime, tz: ZoneInfo) -> int:
    """The year a number registered at `now` carries: the organisation's calendar year."""
    return now.astimezone(tz).year


class Move(StrEnum):
    ASSIGN = "assign"
    VOID = "void"


def move_for(numbering: Numbering, request: Request, events: Iterable[TrailEvent]) -> Move | None:
    """What these events (one state change) mean for the document's number: its registrar step
    was approved (assign), the document ended without going out (void), or nothing."""
    steps = {s.index: s.key for s in request.steps}
    kinds = set()
    for e in events:
        kinds.add(e.kind)
        if (
            e.kind == "step_approved"
            and e.step_index is not None
            and steps.get(e.step_index) == numbering.step
        ):
            return Move.ASSIGN
    if request.status in VOIDING and f"request_{request.status.value}" in kinds:
        return Move.VOID
    return None
