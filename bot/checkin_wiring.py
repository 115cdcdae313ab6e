"""Wires field check-ins into the app: the service's configuration from the settings, and the
check-in page, the manager page and the API routes.

`bot.wiring.workflow_ctx` builds the `CheckinService` before the workflow and hands the workflow
its hook (trips from approved outings) and its 补卡 validator; building the service registers its
timer kinds (the missing-check-in ladder and the managers' daily summary) on the app's timer
registry, whose one scan fires them. `setup_checkins(app)` at build time adds the routes.
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from bot.settings import Settings
from bot.web.api_checkins import setup_checkin_api
from bot.web.checkin_pages import setup_checkin_pages
from services.checkins import CheckinConfig


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


def setup_checkins(app: web.Application) -> None:
    setup_checkin_api(app)
    setup_checkin_pages(app)
