"""Wires field check-ins into the app: the service (with its workflow hook and 补卡 validator),
the check-in page, the manager page and the API routes, and the two scheduler jobs.

`checkin_service(app, workflow)` is called by `bot.wiring.workflow_ctx` once the workflow exists
(the chat service needs it); `setup_checkins(app)` at build time adds the routes and one
cleanup_ctx that puts the jobs on the app's scheduler — the missing-check-in scan every minute
and the managers' daily summary — and takes them off at shutdown. The scheduler is paused when
background work is off (tests), which then call `scan_missing()` / `send_daily_summaries()`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web
from apscheduler.jobstores.base import JobLookupError

from bot.keys import CHECKINS, CLOCK, DB, SCHEDULER, SETTINGS
from bot.settings import Settings
from services.approvals import Workflow
from services.checkins import CheckinConfig, CheckinService

logger = logging.getLogger(__name__)

SCAN_JOB_ID = "checkins-missing-scan"
SUMMARY_JOB_ID = "checkins-daily-summary"
MISFIRE_GRACE_S = 3600


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
    )


def checkin_service(app: web.Application, workflow: Workflow) -> CheckinService:
    """The service, registered on the workflow (trip hook, 补卡 quota) and under app[CHECKINS]."""
    service = CheckinService(app[DB], workflow.org, checkin_config(app[SETTINGS]), app[CLOCK].now)
    workflow.d.hooks.append(service.on_outcome)
    workflow.d.validators.append(service.check_submission)
    app[CHECKINS] = service
    return service


async def checkin_jobs_ctx(app: web.Application) -> AsyncIterator[None]:
    scheduler = app[SCHEDULER]
    service = app[CHECKINS]
    settings = app[SETTINGS]
    scheduler.add_job(
        service.scan_missing,
        "interval",
        minutes=1,
        id=SCAN_JOB_ID,
        max_instances=1,
        coalesce=True,
        replace_existing=True,
    )
    summary_at = settings.checkins.summary_at
    if summary_at is not None:
        scheduler.add_job(
            service.send_daily_summaries,
            "cron",
            hour=summary_at.hour,
            minute=summary_at.minute,
            timezone=settings.tz,
            id=SUMMARY_JOB_ID,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=MISFIRE_GRACE_S,
            replace_existing=True,
        )
    yield
    for job_id in (SCAN_JOB_ID, SUMMARY_JOB_ID):
        try:
            scheduler.remove_job(job_id)
        except JobLookupError:
            pass


def setup_checkins(app: web.Application) -> None:
    from bot.web.api_checkins import setup_checkin_api
    from bot.web.checkin_pages import setup_checkin_pages

    setup_checkin_api(app)
    setup_checkin_pages(app)
    app.cleanup_ctx.append(checkin_jobs_ctx)
