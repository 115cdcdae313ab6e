"""Refusals of the check-in core. Each has a stable `code`, a message people read (Chinese, shown
as is in chat, on the check-in page and in API errors) and its context as attributes. A refusal
records nothing. The edges translate them: `bot.web.api_checkins` to HTTP statuses, the chat
handler to a reply, the check-in page to its message box."""

from __future__ import annotations

from typing import Any


class CheckinError(Exception):
    code = "checkin_error"

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context


class FixInvalid(CheckinError):
    """Coordinates out of range or not numbers, a negative accuracy, an unknown system."""

    code = "fix_invalid"


class TripNotFound(CheckinError):
    code = "trip_not_found"


class TripNotApproved(CheckinError):
    """The request behind the trip is not (or not yet) approved."""

    code = "trip_not_approved"


class NotYourTrip(CheckinError):
    """The trip, or the link, belongs to someone else."""

    code = "not_your_trip"


class LinkInvalid(CheckinError):
    """The link was altered, cut short, or signed with another secret."""

    code = "link_invalid"


class LinkExpired(CheckinError):
    code = "link_expired"


class FreeCheckinNotAllowed(CheckinError):
    """No trip today, and the person's role does not allow check-ins without one."""

    code = "free_checkin_not_allowed"


class FixQuotaExceeded(CheckinError):
    """补卡 over the monthly quota."""

    code = "fix_quota_exceeded"
