"""WeCom 企业微信 adapter: a self-built app's callback URL in, app messages and cards out.

- `setup_wecom(app)`: the callback routes (`bot.platforms.wecom.callbacks`), registered when
  the app is built with WeCom settings;
- `wecom_delivery(app)`: the `Delivery` the outbox dispatcher uses (`...wecom.delivery`), built
  at start-up from the shared HTTP client, key-value store and database.

Modules: `crypto` (signature, AES), `inbound` (XML → neutral events), `cards` (neutral cards →
template_card JSON), `client` (API calls, tokens, retries), `card_refs` (where cards went).
Translation only: approval rules stay in `approvals/`.
"""

from __future__ import annotations

from aiohttp import web

from bot.keys import CLOCK, DB, HTTP, KV, SETTINGS
from bot.platforms.wecom.callbacks import PATH, WeComCallbacks
from bot.platforms.wecom.client import WeComClient
from bot.platforms.wecom.crypto import WeComCrypto
from bot.platforms.wecom.delivery import WeComDelivery
from notifications.delivery import Delivery

__all__ = ["setup_wecom", "wecom_delivery"]


def setup_wecom(app: web.Application) -> None:
    settings = app[SETTINGS].wecom
    if settings is None:
        raise RuntimeError("setup_wecom needs OABOT_WECOM_* settings")
    callbacks = WeComCallbacks(
        WeComCrypto(settings.token, settings.aes_key, settings.corp_id),
        message_max_age_s=settings.message_max_age_s,
        event_max_age_s=settings.event_max_age_s,
    )
    app.router.add_get(PATH, callbacks.verify_url)
    app.router.add_post(PATH, callbacks.receive)


def wecom_delivery(app: web.Application) -> Delivery:
    settings = app[SETTINGS].wecom
    if settings is None:
        raise RuntimeError("wecom_delivery needs OABOT_WECOM_* settings")
    client = WeComClient(app[HTTP], settings, app[KV])
    return WeComDelivery(client, app[DB], app[KV], app[CLOCK].now)
