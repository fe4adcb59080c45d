"""(reserved: filled in by the work that needs it)

Revision ID: 0018_user_locale
Revises: 0017_send_started
Create Date: 2026-12-04 20:10:00
"""

from collections.abc import Sequence

revision: str = "0018_user_locale"
down_revision: str | Sequence[str] | None = "0017_send_started"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
