"""Chat side of field check-ins: a shared location is a check-in; 打卡 asks for fresh links.

A location (a WeCom/DingTalk location message or LOCATION event, the console's location form —
all the neutral `LocationShared`) becomes one call to the check-in service: an arrival or
departure on the person's trip today, else a free check-in when their role allows it, else a
polite reply saying why nothing was recorded. Refusals come back as their message.
"""

from __future__ import annotations

from handlers.events import LocationShared, TextMessage
from handlers.router import Router

router = Router("checkins")

NO_SERVICE = "已收到您的位置。外勤签到暂未启用。"


def _deps(deps: object):  # type: ignore[no-untyped-def]
    from handlers.chat import ChatDeps

    assert isinstance(deps, ChatDeps) and deps.user is not None
    return deps


@router.location()
async def on_location(event: LocationShared, deps: object) -> str | None:
    from checkins.core import make_fix
    from checkins.errors import CheckinError, FreeCheckinNotAllowed
    from checkins.trust import Source

    d = _deps(deps)
    if d.checkins is None:
        return NO_SERVICE
    try:
        fix = make_fix(
            event.lat,
            event.lng,
            accuracy_m=event.accuracy_m,
            coord_system=event.coord_system,
            source=Source.PLATFORM,
            received_at=d.now(),
            device_at=event.at,
            channel=event.sender.platform,
            label=event.label,
        )
        recorded = await d.checkins.record_location(
            d.user, fix, dedupe_key=f"{event.sender.platform}:{event.event_id}"
        )
    except FreeCheckinNotAllowed as exc:
        return f"已收到您的位置（{event.lat:.5f}, {event.lng:.5f}）。{exc.message}"
    except CheckinError as exc:
        return exc.message
    return recorded.reply


@router.text("打卡")
async def on_checkin_links(event: TextMessage, deps: object) -> str | None:
    d = _deps(deps)
    if d.checkins is None:
        return NO_SERVICE
    return await d.checkins.fresh_links(d.user)
