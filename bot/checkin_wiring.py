"""Wires field check-ins into the app: the service (with its workflow hook, 补卡 validator and
timer kinds), the check-in page, the manager page and the API routes.

`checkin_service(app, workflow)` is called by `bot.wiring.workflow_ctx` once the workflow exists
(the chat service needs it); building the service registers its timer kinds (the
missing-check-in ladder and the managers' daily summary) on the app's timer registry, whose one
scan fires them. `setup_checkins(app)` at build time adds the routes.
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from bot.keys import CHECKINS, CLOCK, DB, SETTINGS, TIMER_KINDS
from bot.settings import Settings
from services.approvals import Workflow
from services.checkins import CheckinConfig, CheckinService


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


def checkin_service(app: web.Application, workflow: Workflow) -> CheckinService:
    """The service, registered on the workflow (trip hook, 补卡 quota) and under app[CHECKINS]."""
    service = CheckinService(
        app[DB], workflow.org, checkin_config(app[SETTINGS]), app[CLOCK].now, app[TIMER_KINDS]
    )
    workflow.d.hooks.append(service.on_outcome)
    workflow.d.validators.append(service.check_submission)
    app[CHECKINS] = service
    return service


def setup_checkins(app: web.Application) -> None:
    from bot.web.api_checkins import setup_checkin_api
    from bot.web.checkin_pages import setup_checkin_pages

    setup_checkin_api(app)
    setup_checkin_pages(app)
