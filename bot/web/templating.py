"""The Jinja2 environment behind every server-rendered page (the console, the check-in pages).

Templates live in `bot/web/templates/`, stylesheets and scripts in `bot/web/static/`. Autoescape
is on for every template, so whatever a person typed (a name, a reason, a comment, an address)
reaches the browser as text, never as markup. No page assembles HTML in Python: handlers pass
values and typed views, templates lay them out.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from functools import cache
from pathlib import Path

import aiohttp_jinja2
from aiohttp import web
from jinja2 import PackageLoader, StrictUndefined
from markupsafe import Markup

from approvals.forms import max_length

STATIC_DIR = Path(__file__).parent / "static"


@cache
def static_text(name: str) -> str:
    """A stylesheet or script from `bot/web/static/`, for pages that inline it."""
    return (STATIC_DIR / name).read_text(encoding="utf-8")


def inline_static(name: str) -> Markup:
    # Our own files, shipped with the package: safe to put into a <style> or <script> as they are.
    return Markup(static_text(name))


def local_time(moment: datetime | str | None, tz: tzinfo, fmt: str = "%m-%d %H:%M") -> str:
    """A timestamp (or ISO 8601 text) in the organisation's time zone; empty when there is none."""
    if not moment:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(tz).strftime(fmt)


def setup_templates(app: web.Application) -> None:
    """The app's one environment; the console and the check-in pages both ask for it."""
    if aiohttp_jinja2.APP_KEY in app:
        return
    env = aiohttp_jinja2.setup(
        app,
        loader=PackageLoader("bot.web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        default_helpers=False,
    )
    env.globals["inline_static"] = inline_static
    env.filters["local_time"] = local_time
    env.globals["max_length"] = max_length  # a form field's longest text, for maxlength=
