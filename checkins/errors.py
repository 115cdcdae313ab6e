"""Refusals of the check-in core. Each has a stable `code`, a `reason` and its context as
attributes; `notifications.messages` says it in words (in chat, on the check-in page and in API
errors). A refusal records nothing. Each has a `category` (`org.errors.DomainError`); the edges translate them: the
HTTP error middleware to a status, the chat handler to a reply, the check-in page to its message box."""

from __future__ import annotations

from enum import StrEnum

from org.errors import Category, DomainError


class CheckinError(DomainError):
    code = "checkin_error"


class FixProblem(StrEnum):
    """What is wrong with a reported position (a `FixInvalid` lists every one in `problems`)."""

    LATITUDE = "latitude"  # not a number from -90 to 90
    LONGITUDE = "longitude"  # not a number from -180 to 180
    ACCURACY = "accuracy"  # negative or not a number
    COORD_SYSTEM = "coord_system"  # not one of `org.model.COORD_SYSTEMS`
    DEVICE_TIME = "device_time"  # the device time has no time zone


class FixInvalid(CheckinError):
    """Coordinates out of range or not numbers, a negative accuracy, an unknown system."""

    code = "fix_invalid"
    category = Category.INVALID


class TripNotFound(CheckinError):
    code = "trip_not_found"
    category = Category.NOT_FOUND


class TripNotApproved(CheckinError):
    """The request behind the trip is not (or not yet) approved."""

    code = "trip_not_approved"
    category = Category.CONFLICT


class NotYourTrip(CheckinError):
    """The trip, or the link, belongs to someone else."""

    code = "not_your_trip"
    category = Category.FORBIDDEN


class LinkInvalid(CheckinError):
    """The link was altered, cut short, or signed with another secret."""

    code = "link_invalid"
    category = Category.FORBIDDEN


class LinkExpired(CheckinError):
    code = "link_expired"
    category = Category.GONE


class FreeCheckinNotAllowed(CheckinError):
    """No trip today, and the person's role does not allow check-ins without one."""

    code = "free_checkin_not_allowed"
    category = Category.FORBIDDEN


class FixQuotaExceeded(CheckinError):
    """补卡 over the monthly quota."""

    code = "fix_quota_exceeded"
    category = Category.INVALID


class AlreadyCheckedIn(CheckinError):
    """A check-in link was used again: one arrival and one departure per trip through its links.
    `shown["at_local"]` is when the first one was made, in the office's time zone."""

    code = "already_checked_in"
    category = Category.CONFLICT
