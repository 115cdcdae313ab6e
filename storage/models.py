"""Every table oabot has, gathered so Alembic and tests see one complete metadata.

Each area defines its tables in its own module; this module only imports them.
"""

from __future__ import annotations

from sqlmodel import SQLModel

from storage import approval_models, console_models, org_models, platform_models  # noqa: F401  (registers tables)

metadata = SQLModel.metadata
