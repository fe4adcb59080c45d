"""(reserved: filled in by the work that needs it)

Revision ID: 0016_dashboard_sessions
Revises: 0015_supplier_consent
Create Date: 2026-12-04 20:10:00
"""

from collections.abc import Sequence

revision: str = "0016_dashboard_sessions"
down_revision: str | Sequence[str] | None = "0015_supplier_consent"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
