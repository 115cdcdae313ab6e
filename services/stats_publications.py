"""Publishing a period's statistics 发布统计: the office freezes the appraisal numbers of a period
and sends each department head their department's summary and the office the whole
organisation's, through the outbox.

`publish` computes the numbers through `StatsService.appraisal` (the page's and the API's
source), then in one transaction stores them as the period's next version and queues the
messages: either both happen or neither. A frozen publication is read back as stored, so a later
correction of the data (a re-decided task, a re-imported org) changes no published number; it
takes a new publication, which gets the next version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from approvals.definitions import Template
from reports.stats import Period, StatsReport, StatsRow, weekly_messages
from services.stats import SUMMARY_KIND, StatsService
from storage import publication_store
from storage.approval_models import OutboxRow
from storage.db import Database

TITLE = "审批统计发布"
PUBLISH_ATTEMPTS = 3  # a version taken by a concurrent publisher is retried with the next


@dataclass(frozen=True)
class Publication:
    id: int
    first: date
    last: date
    version: int
    numbers: dict[str, Any]
    published_by: str
    published_at: datetime
    recipients: int


def _view(row: Any) -> Publication:
    return Publication(
        id=row.id,
        first=row.period_from,
        last=row.period_to,
        version=row.version,
        numbers=row.numbers,
        published_by=row.published_by,
        published_at=row.published_at,
        recipients=row.recipients,
    )


def report_of(numbers: dict[str, Any], period: Period) -> StatsReport:
    """The `StatsReport` inside frozen numbers (to word the summaries from what is stored)."""
    body = numbers["report"]
    rows = [StatsRow(kind="department", **r) for r in body["departments"]]
    rows += [StatsRow(kind="person", **r) for r in body["people"]]
    return StatsReport(period=period, department=body.get("department"), rows=tuple(rows))


class StatsPublications:
    def __init__(
        self, *, db: Database, stats: StatsService, office_role: str, now: Callable[[], datetime]
    ) -> None:
        self.db = db
        self.stats = stats
        self.office_role = office_role
        self.now = now

    async def publish(self, period: Period, *, by: str, templates: Mapping[str, Template]) -> Publication:
        """Freeze the period's numbers as its next version and queue the summaries. Raises
        OrgNotImported."""
        now = self.now()
        org, numbers = await self.stats.appraisal(self.db, period, now=now, templates=templates)
        report = report_of(numbers, period)
        messages = weekly_messages(report, org, self.office_role, title=TITLE)
        for attempt in range(PUBLISH_ATTEMPTS):
            try:
                return await self._store(period, numbers, messages, by=by, now=now)
            except IntegrityError:  # another office member published the period at the same time
                if attempt + 1 == PUBLISH_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    async def _store(
        self, period: Period, numbers: dict[str, Any], messages: dict[str, str], *, by: str, now: datetime
    ) -> Publication:
        async with self.db.transaction() as session:
            row = await publication_store.add_publication(
                session,
                first=period.first,
                last=period.last,
                numbers=numbers,
                published_by=by,
                recipients=len(messages),
                now=now,
            )
            for recipient, text in messages.items():
                session.add(
                    OutboxRow.due_now(kind=SUMMARY_KIND, recipient=recipient, payload={"text": text}, now=now)
                )
            return _view(row)

    async def list(self) -> list[Publication]:
        async with self.db.session() as session:
            return [_view(r) for r in await publication_store.list_publications(session)]

    async def get(self, publication_id: int) -> Publication | None:
        async with self.db.session() as session:
            row = await publication_store.get_publication(session, publication_id)
            return None if row is None else _view(row)
