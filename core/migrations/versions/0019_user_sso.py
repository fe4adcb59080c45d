"""(reserved: filled in by the work that needs it)

Revision ID: 0019_user_sso
Revises: 0018_user_locale
Create Date: 2026-12-04 20:10:00
"""

from collections.abc import Sequence

revision: str = "0019_user_sso"
down_revision: str | Sequence[str] | None = "0018_user_locale"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
