"""DingTalk web sign-in 免登: what the page's one-time auth code says about who it is.

The page inside DingTalk gets the code from `dd.runtime.permission.requestAuthCode({corpId,
clientId})` and posts it; it is exchanged once at `POST /topapi/v2/user/getuserinfo` (old API,
`?access_token=`) through the client's cached token. DingTalk's codes last 5 minutes and work once.
Knows the URL and the answer's shape only: deciding who may sign in is the caller's.
"""

from __future__ import annotations

from bot.platforms.dingtalk.client import DingTalkApiError, DingTalkClient

GETUSERINFO = "/topapi/v2/user/getuserinfo"


class CodeRefused(Exception):
    """DingTalk did not accept the code (unknown, used or expired)."""


async def user_id_for_code(client: DingTalkClient, code: str) -> str | None:
    """The member's userid for an auth code, or None when the answer names nobody. Raises
    CodeRefused, or DingTalkApiError when DingTalk cannot be asked."""
    try:
        answer = await client.oapi("POST", GETUSERINFO, body={"code": code})
    except DingTalkApiError as exc:
        if not exc.retryable:
            raise CodeRefused(str(exc)) from exc
        raise
    result = answer.get("result")
    userid = result.get("userid") if isinstance(result, dict) else None
    return userid if isinstance(userid, str) and userid else None
