"""Chat side of field check-ins: a shared location is a check-in; 打卡 asks for fresh links.

A location (a WeCom/DingTalk location message or LOCATION event, the console's location form —
all the neutral `LocationShared`) becomes one call to the check-in service: an arrival or
departure on the person's trip today, else a free check-in when their role allows it, else a
polite reply saying why nothing was recorded. Refusals come back as their message.
"""

from __future__ import annotations

from checkins.core import make_fix
from checkins.errors import CheckinError, FreeCheckinNotAllowed
from checkins.trust import Source
from handlers.deps import ChatDeps
from handlers.events import LocationShared, TextMessage
from handlers.router import Router
from notifications.messages import message_for

router = Router("checkins")

NO_SERVICE = "已收到您的位置。外勤签到暂未启用。"


@router.location()
async def on_location(event: LocationShared, deps: ChatDeps) -> str | None:
    if deps.checkins is None:
        return NO_SERVICE
    try:
        fix = make_fix(
            event.lat,
            event.lng,
            accuracy_m=event.accuracy_m,
            coord_system=event.coord_system,
            source=Source.PLATFORM,
            received_at=deps.now(),
            device_at=event.at,
            channel=event.sender.platform,
            label=event.label,
        )
        recorded = await deps.checkins.record_location(
            deps.user, fix, dedupe_key=f"{event.sender.platform}:{event.event_id}"
        )
    except FreeCheckinNotAllowed as exc:
        return f"已收到您的位置（{event.lat:.5f}, {event.lng:.5f}）。{message_for(exc)}"
    except CheckinError as exc:
        return message_for(exc)
    return recorded.reply


@router.text("打卡")
async def on_checkin_links(event: TextMessage, deps: ChatDeps) -> str | None:
    if deps.checkins is None:
        return NO_SERVICE
    return await deps.checkins.fresh_links(deps.user)
