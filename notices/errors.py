"""Refusals of the notice rules and the notice service. Each carries a stable `code`, a
`reason` (the key of its Chinese wording in `notifications.messages.MESSAGES`) and its context;
no words. A refusal changes nothing."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from org.errors import Category, DomainError


class NoticeError(DomainError):
    code = "notice_error"


class NoticeNotFound(NoticeError):
    code = "notice_not_found"
    category = Category.NOT_FOUND


class NoticeInvalid(NoticeError):
    """A draft that cannot be published as written (reason says which part)."""

    code = "notice_invalid"
    category = Category.INVALID


class AudienceInvalid(NoticeError):
    """An audience naming nobody, an unknown department or person (reason says which)."""

    code = "audience_invalid"
    category = Category.INVALID


class ConfidentialityRefused(NoticeError):
    """A level at or above the threshold: such items do not go through the system."""

    code = "confidentiality_refused"
    category = Category.REFUSED


class RestrictedAudience(NoticeError):
    """A restricted item (秘密 and above, or named-people-only) addressed to a group."""

    code = "restricted_audience"
    category = Category.INVALID


class NotRecipient(NoticeError):
    """Neither a recipient nor the author (nor, where it is allowed, an org admin)."""

    code = "not_recipient"
    category = Category.FORBIDDEN


class NotAuthor(NoticeError):
    """Only the author (or an org admin, where it is allowed) may do this."""

    code = "not_author"
    category = Category.FORBIDDEN


class NoticeNotPublished(NoticeError):
    """Pending approval, rejected or recalled: nothing can be answered on it."""

    code = "notice_not_published"
    category = Category.CONFLICT


class IllegalReceiptMove(NoticeError):
    """A receipt move the transition table does not allow (e.g. acknowledging twice)."""

    code = "receipt_move"
    category = Category.CONFLICT


class RecallRefused(NoticeError):
    """Somebody opened it already: `openers` holds (person, opened_at) pairs."""

    code = "recall_refused"
    category = Category.CONFLICT


class PasswordRequired(NoticeError):
    code = "password_required"
    category = Category.FORBIDDEN


class WrongPassword(NoticeError):
    code = "wrong_password"
    category = Category.FORBIDDEN


class LockedOut(NoticeError):
    """Too many wrong passwords: locked out of this item until `until`."""

    code = "notice_locked"
    category = Category.TOO_MANY

    def __init__(
        self,
        reason: str | None = None,
        /,
        *,
        until: datetime,
        shown: Mapping[str, Any] | None = None,
        **context: Any,
    ) -> None:
        super().__init__(reason, shown=shown, until=until, **context)
        self.until = until


class UrgeTooSoon(NoticeError):
    """催办 at most once per 30 minutes per notice."""

    code = "notice_urge_too_soon"
    category = Category.TOO_MANY

    def __init__(
        self,
        reason: str | None = None,
        /,
        *,
        retry_at: datetime,
        shown: Mapping[str, Any] | None = None,
        **context: Any,
    ) -> None:
        super().__init__(reason, shown=shown, retry_at=retry_at, **context)
        self.retry_at = retry_at


class NothingToUrge(NoticeError):
    """Everyone answered already: nobody to remind."""

    code = "notice_urge_nobody"
    category = Category.CONFLICT


class NoticeBusy(NoticeError):
    code = "busy"
    category = Category.UNAVAILABLE
