"""WeCom web sign-in (OAuth2, silent `snsapi_base`): where to send the browser, and what the
one-time `code` it comes back with says about who it is.

The browser goes to `<OABOT_WECOM_OAUTH_BASE>/connect/oauth2/authorize?...#wechat_redirect`; WeCom
sends it back to the redirect URL (on the app's 可信域名, trusted domain) with `code` and the
`state` given. `code` is exchanged once at `GET /cgi-bin/auth/getuserinfo`, through the client's
cached access token. Knows URLs and answer shapes only: deciding who may sign in is the caller's.
"""

from __future__ import annotations

from urllib.parse import urlencode

from bot.platforms.wecom.client import WeComApiError, WeComClient
from bot.settings import WeComSettings

GETUSERINFO = "/cgi-bin/auth/getuserinfo"


class CodeRefused(Exception):
    """WeCom did not accept the code (unknown, used or expired)."""


def authorize_url(settings: WeComSettings, *, redirect_uri: str, state: str) -> str:
    """The silent authorize URL: WeCom identifies the person and returns to `redirect_uri`."""
    query = urlencode(
        {
            "appid": settings.corp_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": "snsapi_base",
            "state": state,
            "agentid": str(settings.agent_id),
        }
    )
    return f"{settings.oauth_base}/connect/oauth2/authorize?{query}#wechat_redirect"


async def user_id_for_code(client: WeComClient, code: str) -> str | None:
    """The member's userid for a one-time code; None for a visitor who is not a member (WeCom then
    answers with an openid only). Raises CodeRefused, or WeComApiError when WeCom cannot be asked."""
    try:
        answer = await client.call("GET", GETUSERINFO, params={"code": code})
    except WeComApiError as exc:
        if exc.errcode is not None and not exc.retryable:
            raise CodeRefused(str(exc)) from exc
        raise
    # The older user/getuserinfo spelled it UserId; auth/getuserinfo says userid.
    userid = answer.get("userid") or answer.get("UserId")
    return userid if isinstance(userid, str) and userid else None
