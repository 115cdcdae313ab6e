"""Where the trail key comes from: OABOT_TRAIL_KEY, or a key file kept outside the database.

The key seals the tamper-evident trail (`approvals.trail`), so it must not live in the database
it protects. Unset, it is read from OABOT_TRAIL_KEY_FILE (./var/trail.key), which the first
process to need it generates: 32 random bytes, hex, mode 0600, linked into place atomically so
two processes starting at once end up with the same key. Several hosts (replicas) must share the
key: set OABOT_TRAIL_KEY, or give them the same file. OABOT_TRAIL_OLD_KEYS lists retired keys
that still verify what they sealed.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from approvals.trail import TrailKey, TrailKeys
from bot.settings import Settings

logger = logging.getLogger(__name__)

MIN_LENGTH = 32


class TrailKeyProblem(Exception):
    """The key file cannot be read or holds no usable key; the message says what to do."""


def load_trail_keys(settings: Settings) -> TrailKeys:
    """The configured keys, generating the key file when there is neither a key nor a file."""
    text = settings.trail_key
    if text is None:
        path = Path(settings.trail_key_file)
        if not path.exists() and not settings.is_sqlite:
            logger.warning(
                "no trail key yet: generating %s; several replicas must share one key "
                "(set OABOT_TRAIL_KEY on each, or give them this file)",
                path,
            )
        text = _read_or_create(path)
    return TrailKeys(
        current=TrailKey.of(text.encode("utf-8")),
        old=tuple(TrailKey.of(old.encode("utf-8")) for old in settings.trail_old_keys),
    )


def _read_or_create(path: Path) -> str:
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(secrets.token_hex(32) + "\n")
        try:
            os.link(fresh, path)  # fails if another process put its key there first: use that one
            logger.info("trail key generated in %s (keep it, and back it up apart from the database)", path)
        except FileExistsError:
            pass
    finally:
        fresh.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("trail key file %s is readable by others: chmod 600 it", path)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise TrailKeyProblem(f"cannot read the trail key file {path}: {exc}") from exc
    if len(text) < MIN_LENGTH:
        raise TrailKeyProblem(
            f"the trail key file {path} holds no key of at least {MIN_LENGTH} characters "
            "(remove it to have one generated, or set OABOT_TRAIL_KEY)"
        )
    return text
