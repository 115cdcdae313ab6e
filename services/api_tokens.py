"""Who is calling the REST API: named API tokens, their scopes, and whom a caller may act as.

A token is a random secret shown once when it is created; the `api_tokens` table keeps only its
SHA-256 digest, so a copy of the database yields no usable token. Each token has a name, scopes
(`read`: look; `act`: submit and act as a person; `admin`: calendar writes, other people's
delegations, acting on behalf of others) and, for a personal token, the one person it acts as.
`OABOT_API_TOKEN` stays the bootstrap token: an integration named "bootstrap" with every scope.

`Principal.acting_as` holds the actor rules the REST edge applies to every body that names a
person. This module is the only one that touches the token table; it knows nothing of HTTP
(the middleware turns `TokenRefused` into a 401 and `TokenForbidden` into a 403).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from org.errors import Category, DomainError
from org.model import is_org_admin
from services.directory import Directory
from storage.api_token_models import ApiTokenRow
from storage.db import Database

logger = logging.getLogger(__name__)

BOOTSTRAP = "bootstrap"
SECRET_PREFIX = "oat_"  # makes a leaked token recognisable in a scan of logs or code
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")
# `last_used_at` is written at most this often per token, not on every call.
TOUCH_EVERY = timedelta(minutes=1)


class Scope(StrEnum):
    READ = "read"  # GET routes and previews
    ACT = "act"  # submit, act, check in, one's own delegations
    ADMIN = "admin"  # calendar writes, other people's delegations, acting on behalf of others


class TokenRefused(Exception):
    """The bearer token is missing, unknown or revoked (the edge answers 401 with `message`)."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


class TokenForbidden(DomainError):
    """The token is valid but may not do this; `missing` names what it lacks."""

    code = "forbidden"
    category = Category.FORBIDDEN


class TokenInvalid(DomainError):
    code = "invalid_token_spec"
    category = Category.INVALID


class TokenNameTaken(DomainError):
    code = "token_name_taken"
    category = Category.CONFLICT


class TokenNotFound(DomainError):
    code = "token_not_found"
    category = Category.NOT_FOUND


@dataclass(frozen=True)
class Acting:
    """Whom an API call acts as, and through which token (recorded as `via` on the trail)."""

    user: str
    via: str


@dataclass(frozen=True)
class Principal:
    """The caller behind a bearer token. `user` is set for a personal token only."""

    name: str
    scopes: frozenset[Scope]
    user: str | None = None

    @property
    def label(self) -> str:
        """How the trail names the token: `personal token phone` or `integration erp`."""
        return f"personal token {self.name}" if self.user else f"integration {self.name}"

    def require(self, scope: Scope) -> None:
        if scope not in self.scopes:
            raise TokenForbidden(
                "token.missing_scope",
                shown={"scope": scope.value},
                missing=f"scope {scope.value}",
                token=self.name,
            )

    def reading_as(self, named: str | None, *, field: str) -> str | None:
        """Whose data a read may cover: anyone's for an integration token (`named`, or everyone
        when None); only its own person's for a personal token (TokenForbidden otherwise)."""
        if self.user is None:
            return named
        if named is not None and named != self.user:
            raise TokenForbidden(
                "token.personal_only",
                shown={"user": self.user, "given": named},
                missing=f"a token of {named} (or an integration token)",
                token=self.name,
                field=field,
            )
        return self.user

    def acting_as(
        self, named: str | None, *, on_behalf_of: str | None = None, field: str = "actor"
    ) -> Acting:
        """The person this call acts as, given the person the body names in `field` and its
        `on_behalf_of`; raises TokenForbidden when the token may not act as them.

        A personal token acts only as its person (naming nobody means that person). An
        integration token acts for someone else only with the `admin` scope, named in
        `on_behalf_of` (new clients) or in `field` (existing clients of the bootstrap token);
        naming nobody is refused as invalid."""
        if self.user is not None:
            for given in (on_behalf_of, named):
                if given is not None and given != self.user:
                    raise TokenForbidden(
                        "token.personal_only",
                        shown={"user": self.user, "given": given},
                        missing=f"a token of {given} (or an admin integration token with on_behalf_of)",
                        token=self.name,
                        field="on_behalf_of" if given == on_behalf_of else field,
                    )
            return Acting(self.user, self.label)
        if on_behalf_of is not None and named is not None and named != on_behalf_of:
            raise TokenInvalid(
                "token.on_behalf_of_mismatch", field=field, on_behalf_of=on_behalf_of, named=named
            )
        person = on_behalf_of or named
        if person is None:
            raise TokenInvalid("token.on_behalf_of_missing", field=field, missing="on_behalf_of")
        if Scope.ADMIN not in self.scopes:
            raise TokenForbidden(
                "token.admin_needed",
                shown={"person": person},
                missing="scope admin",
                token=self.name,
            )
        return Acting(person, self.label)


@dataclass(frozen=True)
class TokenInfo:
    """What `oabot tokens list` shows of a token: everything but its secret."""

    name: str
    scopes: tuple[Scope, ...]
    user: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_scopes(text: str | Iterable[str]) -> tuple[Scope, ...]:
    """`read,act` -> (Scope.READ, Scope.ACT) in canonical order; TokenInvalid naming an unknown one."""
    words = [w.strip() for w in (text.split(",") if isinstance(text, str) else text) if w.strip()]
    unknown = [w for w in words if w not in Scope.__members__.values()]
    if unknown or not words:
        if not unknown:
            raise TokenInvalid("token.no_scope", allowed="read, act, admin")
        raise TokenInvalid(
            "token.unknown_scope", shown={"unknown": ", ".join(unknown)}, allowed="read, act, admin"
        )
    return tuple(s for s in Scope if s.value in words)


def _info(row: ApiTokenRow) -> TokenInfo:
    return TokenInfo(
        name=row.name,
        scopes=parse_scopes(row.scopes),
        user=row.user_id,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


class ApiTokens:
    def __init__(
        self,
        db: Database,
        directory: Directory,
        now: Callable[[], datetime],
        *,
        bootstrap: str | None = None,
        admin_roles: Collection[str] = ("admin",),
    ) -> None:
        self._db = db
        self._directory = directory
        self._now = now
        self._bootstrap = bootstrap
        self._admin_roles = tuple(sorted(admin_roles))

    # -- managing (oabot tokens) -------------------------------------------------------------
    async def create(
        self, *, name: str, scopes: Iterable[str], user: str | None = None
    ) -> tuple[TokenInfo, str]:
        """A new token and its secret; the secret is not kept and cannot be shown again."""
        if not NAME_RE.match(name) or name == BOOTSTRAP:
            raise TokenInvalid("token.bad_name", shown={"bootstrap": BOOTSTRAP}, name=name)
        wanted = parse_scopes(scopes)
        if user is not None:
            person = (await self._directory.org(fresh=True)).user(user)
            if person is None or not person.active:
                raise TokenInvalid("token.unknown_user", user=user)
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        row = ApiTokenRow(
            name=name,
            token_hash=digest(secret),
            scopes=",".join(s.value for s in wanted),
            user_id=user,
            created_at=self._now(),
        )
        try:
            async with self._db.transaction() as s:
                s.add(row)
        except IntegrityError:
            raise TokenNameTaken(name=name) from None
        logger.info("api token created", extra={"token": name, "scopes": row.scopes, "user": user})
        return _info(row), secret

    async def list_tokens(self) -> list[TokenInfo]:
        async with self._db.session() as s:
            rows = (await s.execute(select(ApiTokenRow).order_by(col(ApiTokenRow.id)))).scalars().all()
        return [_info(r) for r in rows]

    async def revoke(self, name: str) -> TokenInfo:
        """Stop a token working at once; revoking a revoked token changes nothing."""
        async with self._db.transaction() as s:
            row = (
                await s.execute(select(ApiTokenRow).where(col(ApiTokenRow.name) == name))
            ).scalar_one_or_none()
            if row is None:
                raise TokenNotFound(name=name)
            if row.revoked_at is None:
                row.revoked_at = self._now()
                logger.info("api token revoked", extra={"token": name})
            return _info(row)

    # -- checking (every /api/ call) ---------------------------------------------------------
    async def resolve(self, secret: str) -> Principal:
        """The caller behind a bearer secret, or TokenRefused saying why not."""
        if not secret:
            raise TokenRefused(
                "需要 API 令牌：发送 'Authorization: Bearer <token>'"
                "（用 `oabot tokens create` 创建，或在服务器上设置 OABOT_API_TOKEN）",
                reason="missing",
            )
        if self._bootstrap is not None and hmac.compare_digest(secret.encode(), self._bootstrap.encode()):
            return Principal(BOOTSTRAP, frozenset(Scope))
        async with self._db.session() as s:
            query = select(ApiTokenRow).where(col(ApiTokenRow.token_hash) == digest(secret))
            row = (await s.execute(query)).scalar_one_or_none()
        if row is None:
            raise TokenRefused("API 令牌无效：没有这个令牌", reason="unknown")
        if row.revoked_at is not None:
            raise TokenRefused(f"API 令牌 {row.name} 已被吊销", reason="revoked")
        if row.user_id is not None and not (await self._directory.org()).is_active(row.user_id):
            raise TokenRefused(f"API 令牌 {row.name} 的持有人 {row.user_id} 已不在职", reason="inactive")
        await self._touch(row)
        return Principal(row.name, frozenset(parse_scopes(row.scopes)), row.user_id)

    async def _touch(self, row: ApiTokenRow) -> None:
        now = self._now()
        if row.last_used_at is not None and now - row.last_used_at < TOUCH_EVERY:
            return
        async with self._db.transaction() as s:
            await s.execute(update(ApiTokenRow).where(col(ApiTokenRow.id) == row.id).values(last_used_at=now))

    async def check_org_admin(self, user: str) -> None:
        """TokenForbidden unless `user` is an active holder of the admin role (OABOT_ADMIN_ROLE)."""
        if not is_org_admin((await self._directory.org()).user(user), self._admin_roles):
            raise TokenForbidden(
                "token.not_org_admin",
                shown={"role": " / ".join(self._admin_roles)},
                missing=f"role {' or '.join(self._admin_roles)}",
                user=user,
            )


async def end_personal_tokens(
    session: AsyncSession, *, user_ids: Collection[str], now: datetime
) -> list[str]:
    """Revoke, inside the caller's transaction, the personal tokens of people who left (a
    directory sync's); their names. Reactivating a person does not bring them back."""
    if not user_ids:
        return []
    rows = (
        await session.execute(
            select(ApiTokenRow)
            .where(col(ApiTokenRow.user_id).in_(list(user_ids)))
            .where(col(ApiTokenRow.revoked_at).is_(None))
        )
    ).scalars()
    names = []
    for row in rows:
        row.revoked_at = now
        names.append(row.name)
    return names
