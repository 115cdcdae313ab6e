"""Documents 公文 in the approval flows: numbers 文号, confidentiality 密级, and first opens.

`Documents` is handed to the workflow (`WorkflowDeps.documents`) and called inside the
transaction of every state change of a template that numbers its documents: when the registrar's
step (登记编号) is approved it takes the next sequence of the document's prefix and year
(`storage.document_store.next_seq`, under the counter row's lock) and records the number, and when
the document ends withdrawn, terminated or rejected its number is marked void (never reused);
both are written to the request's trail. It also records who first opened a request (a person's
action on it counts: they saw its card), which a recall 收回 checks (`withdraw: until_opened`).

`check_submission` is a `SubmitValidator`: a document whose 密级 is at or above the threshold is
refused with the field's problem, and so is an unusable number prefix. The rules themselves are
in `approvals.doc_numbers` and `approvals.confidentiality`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from approvals import doc_numbers, engine
from approvals.confidentiality import DEFAULT_REFUSED_FROM, Confidentiality, level_of, refusal_text, refused
from approvals.definitions import Template
from approvals.doc_numbers import DEFAULT_PATTERN, Move, PrefixInvalid, parse_pattern
from approvals.engine import SYSTEM, Outcome, SystemNote
from approvals.form_errors import FieldProblem, FormInvalid
from approvals.model import Request
from approvals.trail import TrailKey
from notifications.messages import message_for
from org.model import Org
from storage import approval_store as store
from storage import document_store as docs
from storage.document_store import IssuedNumber

logger = logging.getLogger(__name__)


class Documents:
    """The document rules of one organisation: its default number pattern, its timezone (the
    year of a number) and the confidentiality level from which documents are refused."""

    def __init__(
        self,
        *,
        tz: ZoneInfo,
        pattern: str = DEFAULT_PATTERN,
        refused_from: Confidentiality | None = DEFAULT_REFUSED_FROM,
    ) -> None:
        self.tz = tz
        self.pattern = parse_pattern(pattern)
        self.refused_from = refused_from

    # -- submission ---------------------------------------------------------------------------
    async def check_submission(
        self, session: AsyncSession, req: Request, template: Template, org: Org, now: datetime
    ) -> None:
        """Refuse a document above the confidentiality threshold, or one that could not be numbered."""
        problems: list[FieldProblem] = []
        key = template.confidentiality_field
        if key is not None:
            level = level_of(req.form.get(key))
            if level is not None and self.refused_from is not None and refused(level, self.refused_from):
                spec = template.field(key)
                problems.append(
                    FieldProblem(key, spec.label if spec else None, refusal_text(level, self.refused_from))
                )
        rule = template.numbering
        if rule is not None and rule.prefix_field is not None:
            try:
                doc_numbers.prefix_of(rule, req.form)
            except PrefixInvalid as exc:
                spec = template.field(rule.prefix_field)
                problems.append(
                    FieldProblem(rule.prefix_field, spec.label if spec else None, message_for(exc))
                )
        if problems:
            logger.info("document refused at submission", extra={"template": template.key})
            raise FormInvalid(problems)

    # -- numbers -------------------------------------------------------------------------------
    async def on_outcome(
        self, session: AsyncSession, out: Outcome, template: Template, now: datetime, *, key: TrailKey | None
    ) -> IssuedNumber | None:
        """Inside the state change's transaction (after the request is saved): record the actors'
        opens, then give, keep or void the document's number. Returns its number, if it has one."""
        req = out.request
        for e in out.events:
            if e.actor not in (None, SYSTEM, req.initiator) and e.task_id is not None:
                await docs.record_open(
                    session, request_id=req.id, person=e.actor, at=now, channel=str(e.channel)
                )
        rule = template.numbering
        if rule is None:
            return None
        current = await docs.number_of(session, request_id=req.id)
        move = doc_numbers.move_for(rule, req, out.events)
        if move == Move.ASSIGN and current is None:
            return await self._assign(session, req, template, now, key)
        if move == Move.VOID and current is not None and current.status == "issued":
            await docs.void_number(session, request_id=req.id, now=now)
            await _note(
                session, req, now, SystemNote.DOC_NUMBER_VOIDED, current.number, key, status=req.status.value
            )
            logger.info("document number void", extra={"request_id": req.id, "number": current.number})
            return await docs.number_of(session, request_id=req.id)
        return current

    async def _assign(
        self, session: AsyncSession, req: Request, template: Template, now: datetime, key: TrailKey | None
    ) -> IssuedNumber:
        rule = template.numbering
        assert rule is not None
        prefix = doc_numbers.prefix_of(rule, req.form)
        pattern = parse_pattern(rule.pattern) if rule.pattern else self.pattern
        year = doc_numbers.number_year(now, self.tz)
        seq = await docs.next_seq(session, prefix=prefix, year=year, now=now)
        number = pattern.format(prefix=prefix, year=year, seq=seq)
        issued = await docs.insert_number(
            session,
            request_id=req.id,
            template_key=template.key,
            prefix=prefix,
            year=year,
            seq=seq,
            number=number,
            now=now,
        )
        await _note(
            session, req, now, SystemNote.DOC_NUMBER_ASSIGNED, number, key, prefix=prefix, year=year, seq=seq
        )
        logger.info("document numbered", extra={"request_id": req.id, "number": number})
        return issued

    async def number_of(self, session: AsyncSession, request_id: str) -> IssuedNumber | None:
        return await docs.number_of(session, request_id=request_id)

    async def record_open(
        self, session: AsyncSession, *, request_id: str, person: str, now: datetime, channel: str
    ) -> None:
        await docs.record_open(session, request_id=request_id, person=person, at=now, channel=channel)


async def _note(
    session: AsyncSession,
    req: Request,
    now: datetime,
    note: SystemNote,
    number: str,
    key: TrailKey | None,
    **data: Any,
) -> None:
    """One system note on the trail of a request this transaction already saved."""
    before = req.version
    event = engine.system_note(req, now, note, after=number, **data)
    await store.append_to_saved_request(session, request=req, loaded_version=before, events=[event], key=key)


def shown_number(number: IssuedNumber | None) -> str | None:
    """A number as cards, pages and sheets show it: void ones say so."""
    if number is None:
        return None
    return number.number if number.status == "issued" else f"{number.number}（已作废）"
