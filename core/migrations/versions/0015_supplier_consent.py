"""supplier consent: who, when and how; opt-outs; consent history; per-tenant settings

Revision ID: 0015_supplier_consent
Revises: 0014_batch_file_format
Create Date: 2026-12-04 20:10:00

Suppliers gain consent_source / consent_by (how and by whom consent was recorded; the
time stays in opted_in_at) and opted_out_at / opt_out_source / opt_out_by (a withdrawal:
an admin's untick or a stop-word reply). New tables: consent_events (the history) and
tenant_settings (tenant, key, value; e.g. whether sends without recorded consent are
allowed).

Existing rows: a supplier with opted_in true keeps it, with source "legacy" (recorded
before consent tracking) and, where no time was kept, its creation time; one with
opted_in false was unticked in the directory, so it becomes opted out (source "legacy",
at its last update), never sendable. Each gets one history row saying so. The
downgrade drops the new tables and columns (opted_in keeps its meaning throughout).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.models.types

revision: str = "0015_supplier_consent"
down_revision: str | Sequence[str] | None = "0014_batch_file_format"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NEW_COLUMNS = ("consent_source", "consent_by", "opted_out_at", "opt_out_source", "opt_out_by")
_LEGACY_NOTE = "recorded before consent tracking"


def upgrade() -> None:
    utc = core.models.types.UTCDateTime(timezone=True)
    # Plain ADD COLUMN (no batch copy): suppliers is referenced by messages and
    # replies, and recreating it fails SQLite's foreign key check (see 0014).
    op.add_column("suppliers", sa.Column("consent_source", sa.String(length=32), nullable=True))
    op.add_column("suppliers", sa.Column("consent_by", sa.String(length=120), nullable=True))
    op.add_column("suppliers", sa.Column("opted_out_at", utc, nullable=True))
    op.add_column("suppliers", sa.Column("opt_out_source", sa.String(length=32), nullable=True))
    op.add_column("suppliers", sa.Column("opt_out_by", sa.String(length=120), nullable=True))
    op.create_table(
        "consent_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("supplier_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("by", sa.String(length=120), nullable=True),
        sa.Column("evidence", sa.String(length=1000), nullable=True),
        sa.Column("at", utc, nullable=False),
        sa.ForeignKeyConstraint(["supplier_id"], ["suppliers.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_consent_events_supplier", "consent_events", ["supplier_id", "at"])
    op.create_index("ix_consent_events_tenant_at", "consent_events", ["tenant_id", "at"])
    op.create_table(
        "tenant_settings",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=500), nullable=False),
        sa.Column("updated_by", sa.String(length=120), nullable=True),
        sa.Column("updated_at", utc, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "key"),
    )
    suppliers = _suppliers()
    op.execute(
        sa.update(suppliers)
        .where(suppliers.c.opted_in == sa.true())
        .values(
            consent_source="legacy",
            opted_in_at=sa.func.coalesce(suppliers.c.opted_in_at, suppliers.c.created_at),
        )
    )
    op.execute(
        sa.update(suppliers)
        .where(suppliers.c.opted_in == sa.false())
        .values(opted_out_at=suppliers.c.updated_at, opt_out_source="legacy")
    )
    history = (
        "INSERT INTO consent_events (tenant_id, supplier_id, action, source, evidence, at)"
        " SELECT tenant_id, id, :action, 'legacy', :note, {when} FROM suppliers"
        " WHERE {when} IS NOT NULL AND {source} = 'legacy'"
    )
    for action, when, source in (
        ("granted", "opted_in_at", "consent_source"),
        ("withdrawn", "opted_out_at", "opt_out_source"),
    ):
        statement = history.format(when=when, source=source)  # column names fixed above
        op.execute(sa.text(statement).bindparams(action=action, note=_LEGACY_NOTE))


def _suppliers() -> sa.TableClause:
    return sa.table(
        "suppliers",
        sa.column("opted_in", sa.Boolean()),
        sa.column("opted_in_at"),
        sa.column("created_at"),
        sa.column("updated_at"),
        sa.column("consent_source"),
        sa.column("opted_out_at"),
        sa.column("opt_out_source"),
    )


def downgrade() -> None:
    op.drop_index("ix_consent_events_tenant_at", table_name="consent_events")
    op.drop_index("ix_consent_events_supplier", table_name="consent_events")
    op.drop_table("consent_events")
    op.drop_table("tenant_settings")
    for column in reversed(_NEW_COLUMNS):  # plain DROP COLUMN (SQLite >= 3.35), as 0014
        op.execute(f"ALTER TABLE suppliers DROP COLUMN {column}")
