"""drop ix_suppliers_tenant_id: the unique (tenant_id, phone_e164) index serves its queries

Revision ID: 0027_suppliers_tenant_index
Revises: 0025_rollup_statement_triggers
Create Date: 2026-12-05 19:30:00

A tenant's suppliers by number (`core.db.by_unique_key`: a bulk upload's hundreds of
lookups of 500 numbers) must use the unique index. On a table PostgreSQL has never
analyzed (a new database, autovacuum not yet round) it costed the tenant-only index
the same, took it, and read every supplier of the tenant for each number: 30-70 ms per
500 numbers at 1,250 suppliers instead of 1.5 ms, 28 s of one 100,000-row check. Every
query by tenant alone uses the unique index's leading column as well, and an import
maintains one index fewer.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0027_suppliers_tenant_index"
down_revision: str | Sequence[str] | None = "0025_rollup_statement_triggers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_suppliers_tenant_id", table_name="suppliers")


def downgrade() -> None:
    op.create_index("ix_suppliers_tenant_id", "suppliers", ["tenant_id"], unique=False)
