"""`oabot tokens create|list|revoke`: named REST API tokens.

`create` prints the new token's secret once (only its SHA-256 digest is stored, so it cannot be
shown again); `list` shows names, scopes, person, and when each was created, last used and
revoked, never a secret; `revoke NAME` stops a token at once. The command is an edge: it reads
settings, calls `services.api_tokens` and prints what happened; the rules live in that service.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TextIO, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from bot.app import open_database
from bot.settings import ConfigError, Settings, load_settings
from notifications.messages import message_for
from org.errors import DomainError
from services.api_tokens import ApiTokens, TokenInfo
from services.directory import Directory
from storage.base import utcnow
from storage.org_repo import OrgNotImported

EXIT_OK = 0
EXIT_FAILED = 1  # the database could not be used, or the token does not exist
EXIT_INVALID = 2  # bad settings or arguments: nothing was written
T = TypeVar("T")

SCOPE_HELP = "comma-separated: read (GET routes), act (submit and act), admin (everything, for others too)"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tokens",
        help="create, list or revoke REST API tokens",
        description="Named API tokens for /api/: the secret is shown once at creation, then only its hash is kept.",
    )
    actions = parser.add_subparsers(dest="tokens_action", metavar="ACTION")
    create = actions.add_parser("create", help="create a token and print its secret once")
    create.add_argument("--name", required=True, help="a unique name, e.g. erp or phone-u_wu")
    create.add_argument("--scope", required=True, help=SCOPE_HELP)
    create.add_argument("--user", help="a personal token: it acts only as this person (user id)")
    actions.add_parser("list", help="list tokens (never their secrets)")
    revoke = actions.add_parser("revoke", help="stop a token working at once")
    revoke.add_argument("name", metavar="NAME")
    parser.set_defaults(func=lambda args: _run(args, parser))


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.tokens_action == "create":
        return run_create(args.name, args.scope, user=args.user)
    if args.tokens_action == "list":
        return run_list()
    if args.tokens_action == "revoke":
        return run_revoke(args.name)
    parser.print_help(sys.stderr)
    return EXIT_INVALID


def run_create(name: str, scope: str, *, user: str | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    done = _with_tokens(lambda tokens: tokens.create(name=name, scopes=scope.split(","), user=user))
    if isinstance(done, int):
        return done
    info, secret = done
    print(f"created {_describe(info)}", file=out)
    print(secret, file=out)
    print("this token is shown only now: keep it safe (only its hash is stored)", file=sys.stderr)
    return EXIT_OK


def run_list(out: TextIO | None = None) -> int:
    out = out or sys.stdout
    infos = _with_tokens(lambda tokens: tokens.list_tokens())
    if isinstance(infos, int):
        return infos
    if not infos:
        print("no API tokens yet; create one with `oabot tokens create --name N --scope read`", file=out)
    for info in infos:
        used = f"last used {_when(info.last_used_at)}" if info.last_used_at else "never used"
        state = f"revoked {_when(info.revoked_at)}" if info.revoked_at else "active"
        print(f"{_describe(info)}  created {_when(info.created_at)}  {used}  {state}", file=out)
    return EXIT_OK


def run_revoke(name: str, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    info = _with_tokens(lambda tokens: tokens.revoke(name))
    if isinstance(info, int):
        return info
    print(f"revoked {info.name}: it no longer works", file=out)
    return EXIT_OK


def _describe(info: TokenInfo) -> str:
    scopes = ",".join(s.value for s in info.scopes)
    who = f"personal token of {info.user}" if info.user else "integration"
    return f"{info.name} [{scopes}] {who}"


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC" if at else "-"


def _with_tokens(work: Callable[[ApiTokens], Awaitable[T]]) -> T | int:
    """Run `work` on the token service of the configured database; an exit status on failure,
    printed as one line that says what to do."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_INVALID
    try:
        return asyncio.run(_run_on(settings, work))
    except DomainError as exc:
        print(message_for(exc), file=sys.stderr)
        return EXIT_FAILED if exc.code == "token_not_found" else EXIT_INVALID
    except OrgNotImported:
        print("no organisation imported yet: run `oabot org import FILE` first", file=sys.stderr)
        return EXIT_FAILED
    except (SQLAlchemyError, OSError) as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"database not initialised or unreachable ({detail}): run `oabot migrate`", file=sys.stderr)
        return EXIT_FAILED


async def _run_on(settings: Settings, work: Callable[[ApiTokens], Awaitable[T]]) -> T:
    db = open_database(settings.database_url)
    try:
        tokens = ApiTokens(
            db, Directory(db, utcnow), utcnow, bootstrap=settings.api_token, admin_roles=settings.admin_roles
        )
        return await work(tokens)
    finally:
        await db.dispose()
