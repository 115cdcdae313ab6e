"""Every table oabot has, gathered so Alembic and tests see one complete metadata.

Each area defines its tables in its own module; this module only imports them.
"""

from __future__ import annotations

from sqlmodel import SQLModel

from storage import (  # noqa: F401  (importing a module registers its tables)
    api_token_models,
    approval_models,
    calendar_models,
    checkin_models,
    console_models,
    notice_models,
    org_models,
    platform_models,
    publication_models,
    send_models,
    timer_models,
)

metadata = SQLModel.metadata
