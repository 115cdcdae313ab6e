"""Wires field check-ins into the app: the service's configuration from the settings, and the
check-in page, the manager page and the API routes.

`bot.wiring.workflow_ctx` builds the `CheckinService` before the workflow and hands the workflow
its hook (trips from approved outings) and its 补卡 validator; building the service registers its
timer kinds (the missing-check-in ladder and the managers' daily summary) on the app's timer
registry, whose one scan fires them. `setup_checkins(app)` at build time adds the routes.
`ready_demo_trip(app)` is what `oabot serve --demo` runs once the app has started: today's trip
for the demo's field worker.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from aiohttp import web

from approvals.engine import Action
from approvals.model import ActionKind, Channel, TaskStatus
from bot.keys import CHECKINS, WORKFLOW
from bot.settings import Settings
from bot.web.api_checkins import setup_checkin_api
from bot.web.checkin_pages import setup_checkin_pages
from services.checkins import CheckinConfig

logger = logging.getLogger(__name__)

# The demo organisation's field worker (role field_staff) and where their ready trip goes.
DEMO_FIELD_STAFF = "u_zheng"
DEMO_SITE = "site_pudong"
DEMO_TRIP_LENGTH = timedelta(hours=8)  # from start, but not past DEMO_TRIP_UNTIL_HOUR
DEMO_TRIP_MIN_LENGTH = timedelta(hours=2)  # (unless the demo starts late in the evening)
DEMO_TRIP_UNTIL_HOUR = 22


def checkin_config(settings: Settings) -> CheckinConfig:
    c = settings.checkins
    return CheckinConfig(
        tz=settings.tz,
        public_url=settings.public_url,
        link_secret=c.link_secret,
        link_ttl=timedelta(minutes=c.link_ttl_min),
        grace=timedelta(minutes=c.grace_min),
        fix_quota=c.fix_quota,
        free_roles=c.free_roles,
        summary_at=c.summary_at,
    )


async def ready_demo_trip(app: web.Application) -> str | None:
    """The demo's field worker gets an approved outing for today (filed by them, approved by
    their manager through the workflow, like any other), so the check-in demo works at once:
    their chat holds the trip card. Nothing when they already have a trip today; the request id
    otherwise."""
    service, workflow = app[CHECKINS], app[WORKFLOW]
    org = await service.org()
    person = org.user(DEMO_FIELD_STAFF)
    manager = org.manager_of(DEMO_FIELD_STAFF) if person is not None else None
    if person is None or not person.active or manager is None:
        return None
    if await service.active_trip_today(person.id) is not None:
        return None
    now = service.now().astimezone(service.tz).replace(second=0, microsecond=0)
    evening = now.replace(hour=DEMO_TRIP_UNTIL_HOUR, minute=0)
    end = max(now + DEMO_TRIP_MIN_LENGTH, min(now + DEMO_TRIP_LENGTH, evening))
    form = {
        "destination": {"site": DEMO_SITE},
        "start": now.isoformat(),
        "end": end.isoformat(),
        "reason": "设备巡检（演示行程）",
    }
    view = await workflow.submit(template_key="outing", initiator=person.id, form=form, channel="console")
    for step in view.steps:
        for task in step.tasks:
            if task.status == TaskStatus.PENDING:
                action = Action(
                    kind=ActionKind.APPROVE,
                    actor=task.assignee,
                    task_id=task.id,
                    version=task.version,
                    channel=Channel.CONSOLE,
                )
                await workflow.act(request_id=view.id, action=action)
    logger.info("demo trip ready", extra={"request_id": view.id, "user": person.id})
    return view.id


def setup_checkins(app: web.Application) -> None:
    setup_checkin_api(app)
    setup_checkin_pages(app)
