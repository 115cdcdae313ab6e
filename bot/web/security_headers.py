"""Security headers on every response (an `on_response_prepare` hook): what a browser may load
and run on our pages, and that nobody may frame them.

- Every response: `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` (addresses
  carry link tokens), and `X-Frame-Options: DENY` unless OABOT_FRAME_ANCESTORS allows some sites.
- HTML pages: a Content-Security-Policy allowing scripts from this site only, plus the check-in
  page's inline script by its hash and the JS-SDK origins of the connected platforms (DingTalk's
  JSAPI, WeCom's JS-SDK); styles
  from this site and inline (the pages' style attributes); no plugins, no <base>, forms post
  here only, framing only by OABOT_FRAME_ANCESTORS. Images, XHR and frames are left open: the
  in-app browsers of WeCom and DingTalk talk to their hosts through them.
- Everything else (JSON, files, redirects): `default-src 'none'`.

A header a handler set itself is kept.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from urllib.parse import urlsplit

from aiohttp import web

from bot.keys import SETTINGS
from bot.settings import Settings
from bot.web.templating import static_text

# Scripts pages inline with `inline_static` (the check-in page: one request in a weak network).
INLINE_SCRIPTS = ("checkin.js",)


def _script_hash(name: str) -> str:
    digest = hashlib.sha256(static_text(name).encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def _ancestors(allowed: tuple[str, ...]) -> str:
    return " ".join(allowed) or "'none'"


@cache
def page_policy(script_origins: tuple[str, ...], frame_ancestors: tuple[str, ...]) -> str:
    scripts = " ".join(("'self'", *(_script_hash(n) for n in INLINE_SCRIPTS), *script_origins))
    return "; ".join(
        (
            f"script-src {scripts}",
            "style-src 'self' 'unsafe-inline'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            f"frame-ancestors {_ancestors(frame_ancestors)}",
        )
    )


@cache
def other_policy(frame_ancestors: tuple[str, ...]) -> str:
    return f"default-src 'none'; frame-ancestors {_ancestors(frame_ancestors)}"


def _script_origins(settings: Settings) -> tuple[str, ...]:
    """Where the platforms' JS-SDKs come from: DingTalk's JSAPI (sign-in, location) and WeCom's
    JS-SDK (the check-in page's wx.getLocation), when that platform is connected."""
    urls = []
    if settings.dingtalk is not None:
        urls.append(settings.dingtalk.jsapi_url)
    if settings.wecom is not None and settings.wecom.jssdk_url:
        urls.append(settings.wecom.jssdk_url)
    origins = []
    for url in urls:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if parts.netloc and origin not in origins:
            origins.append(origin)
    return tuple(origins)


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    settings = request.config_dict[SETTINGS]
    ancestors = settings.edge.frame_ancestors
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if not ancestors:
        headers.setdefault("X-Frame-Options", "DENY")
    if response.content_type == "text/html":
        policy = page_policy(_script_origins(settings), ancestors)
    else:
        policy = other_policy(ancestors)
    headers.setdefault("Content-Security-Policy", policy)
