"""Confidentiality levels 密级 of documents (发文, 收文), and which are not handled by the system.

The levels, lowest first: 公开 public, 内部 internal, 秘密 secret, 机密 confidential, 绝密 top
secret. The codes are the ones notices use (`notices.model.Confidentiality`); templates show the
Chinese names as the options of their 密级 field. Levels at or above the organisation's threshold
(default 机密; `OABOT_CONFIDENTIALITY_REFUSED_FROM`) do not go through the system: a submission
carrying one is refused before anything is stored. Pure.
"""

from __future__ import annotations

from enum import StrEnum


class Confidentiality(StrEnum):
    PUBLIC = "public"  # 公开
    INTERNAL = "internal"  # 内部
    SECRET = "secret"  # 秘密
    CONFIDENTIAL = "confidential"  # 机密
    TOP_SECRET = "top_secret"  # 绝密


LEVELS = tuple(Confidentiality)  # lowest first
LABEL = {
    Confidentiality.PUBLIC: "公开",
    Confidentiality.INTERNAL: "内部",
    Confidentiality.SECRET: "秘密",
    Confidentiality.CONFIDENTIAL: "机密",
    Confidentiality.TOP_SECRET: "绝密",
}
_BY_WORD = {**{v: k for k, v in LABEL.items()}, **{k.value: k for k in LEVELS}}
DEFAULT_REFUSED_FROM = Confidentiality.CONFIDENTIAL


def level_of(value: object) -> Confidentiality | None:
    """The level a form value or a setting names, by its Chinese name or its code; else None."""
    return _BY_WORD.get(str(value).strip()) if value is not None else None


def refused(level: Confidentiality, refused_from: Confidentiality | None) -> bool:
    """Whether a document at `level` is kept out of the system (None: every level is allowed)."""
    return refused_from is not None and LEVELS.index(level) >= LEVELS.index(refused_from)


def refusal_text(level: Confidentiality, refused_from: Confidentiality) -> str:
    """What the submitter reads on the 密级 field of a refused document."""
    return (
        f"{LABEL[refused_from]}及以上密级（本件为{LABEL[level]}）的文件不通过本系统流转，请按保密规定线下办理"
    )
