"""hourly rollup of funnel stages and latency bins; a partial index of failed messages

Revision ID: 0026_analytics_speed
Revises: 0022_template_waba
Create Date: 2026-12-04 23:55:00

The analytics page still read every message of its range three times: the daily
rates and funnel (stage bits), time to deliver and time to read (latency bins), about
2.2 million index entries for a million messages. On a shared two-core machine that was
1.4 s on PostgreSQL and ~0.3 s on SQLite (issue 13). A rollup now counts them:

- `analytics_hourly_stages`: per (tenant, kind, UTC hour of creation, template, value):
  messages. `kind` 0 counts messages by `stage_flags` (value: the bits), 1 by
  `deliver_bin`, 2 by `read_bin` (value: the bin; messages without one count nowhere).

Cancelled messages count nowhere (stage bit 64, as in every chart). The cells derive
from columns migration 0008's triggers keep (`stage_flags`, `deliver_bin`,
`read_bin`), so the triggers here watch those: on SQLite 0008 writes them with an
UPDATE of its own, which fires these triggers; each writes a delta, so the order in
which the triggers of one statement run does not matter. On PostgreSQL one AFTER ROW
function sees the values 0008's BEFORE trigger set. A NULL template is stored as ''
with bit 1 of `null_bits`. Existing rows are backfilled here.

Also a partial index of failed messages (tenant, creation time, error code, template,
supplier, status), so failures by reason read the failures alone, not every message
of the range or their table rows.

Note for later migrations: on SQLite a batch operation that RECREATES whatsapp_messages
drops these triggers: call `install_triggers` again after it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.models.types

revision: str = "0026_analytics_speed"
down_revision: str | Sequence[str] | None = "0022_template_waba"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "analytics_hourly_stages"
FAILURES_INDEX = "ix_whatsapp_messages_failures"
FAILURES_COLUMNS = [
    "tenant_id", "created_at", "error_code", "template_name", "supplier_id", "status"
]
#: stage_flags' cancelled bit (core.stats.StageFlag.CANCELLED at this revision).
CANCELLED_BIT = 64
#: kind -> (the value column, the condition for a message to count there)
KINDS = {
    0: ("stage_flags", "1 = 1"),
    1: ("deliver_bin", "{row}deliver_bin IS NOT NULL"),
    2: ("read_bin", "{row}read_bin IS NOT NULL"),
}
WATCHED = ("tenant_id", "created_at", "template_name", "stage_flags", "deliver_bin", "read_bin")
#: On PostgreSQL `UPDATE OF` fires only for columns the statement names, not for those
#: 0008's BEFORE trigger sets: the trigger there also watches what they derive from.
PG_WATCHED = (*WATCHED, "status", "accepted_at", "sent_at", "delivered_at", "read_at",
              "replied_at")  # fmt: skip
SQLITE_EVENTS = ("insert", "delete", "update")
PG_FUNCTION = "wanotify_analytics_stages"
PG_TRIGGER = "trg_analytics_stages"


def _hour(row: str, sqlite: bool) -> str:
    if sqlite:
        return f"strftime('%Y-%m-%d %H:00:00.000000', {row}created_at)"
    return f"(date_trunc('hour', {row}created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"


def keys(row: str, kind: int, sqlite: bool) -> dict[str, str]:
    """The cell of `row` (prefix "NEW.", "OLD." or "") for `kind`, column -> expression."""
    return {
        "tenant_id": f"{row}tenant_id",
        "kind": str(kind),
        "hour": _hour(row, sqlite),
        "template_name": f"COALESCE({row}template_name, '')",
        "null_bits": f"(CASE WHEN {row}template_name IS NULL THEN 1 ELSE 0 END)",
        "value": f"{row}{KINDS[kind][0]}",
    }


def counts(row: str, kind: int) -> str:
    """1 when `row` counts in its `kind` cell (not cancelled, has the value), else 0."""
    condition = KINDS[kind][1].format(row=row)
    return f"(CASE WHEN {row}stage_flags < {CANCELLED_BIT} AND {condition} THEN 1 ELSE 0 END)"


def _upsert(cell: dict[str, str], amount: str, when: str = "1 = 1") -> str:
    """Add `amount` to `cell`, creating it if missing; nothing when `amount` is 0 or
    `when` does not hold."""
    columns = ", ".join([*cell, "messages"])
    values = ", ".join([*cell.values(), amount])
    return (
        f"INSERT INTO {TABLE} ({columns}) SELECT {values} WHERE {amount} <> 0 AND {when} "
        f"ON CONFLICT ({', '.join(cell)}) DO UPDATE SET "
        f"messages = {TABLE}.messages + excluded.messages"
    )


def _kind_moved(kind: int, sqlite: bool) -> str:
    """True when an update may move the row's `kind` count: its cell's columns or its
    cancelled bit changed (else taking it out and adding it back is a wasted pair of
    writes, as for the deliver bin when a message is read)."""
    test = "IS NOT" if sqlite else "IS DISTINCT FROM"
    columns = ("tenant_id", "created_at", "template_name", KINDS[kind][0])
    moved = [f"OLD.{c} {test} NEW.{c}" for c in columns]
    live = f"(OLD.stage_flags < {CANCELLED_BIT}) {test} (NEW.stage_flags < {CANCELLED_BIT})"
    return f"({' OR '.join([*moved, live])})"


def _moves(sqlite: bool, old: bool, new: bool) -> str:
    """The statements taking OLD's counts out of its cells and adding NEW's to theirs."""
    statements = []
    for kind in KINDS:
        when = _kind_moved(kind, sqlite) if old and new else "1 = 1"
        if old:
            cell = keys("OLD.", kind, sqlite)
            statements.append(_upsert(cell, f"-{counts('OLD.', kind)}", when))
        if new:
            statements.append(_upsert(keys("NEW.", kind, sqlite), counts("NEW.", kind), when))
    return "; ".join(statements)


def _changed(sqlite: bool) -> str:
    """True when a cell or a count of the row may have changed."""
    test = "IS NOT" if sqlite else "IS DISTINCT FROM"
    return " OR ".join(f"OLD.{c} {test} NEW.{c}" for c in WATCHED)


def install_triggers() -> None:
    """Create the triggers that keep the rollup exact (both dialects)."""
    if op.get_bind().dialect.name == "sqlite":
        ddl = {
            "insert": f"AFTER INSERT ON whatsapp_messages BEGIN {_moves(True, False, True)}; END",
            "delete": f"AFTER DELETE ON whatsapp_messages BEGIN {_moves(True, True, False)}; END",
            "update": f"AFTER UPDATE OF {', '.join(WATCHED)} ON whatsapp_messages "
            f"WHEN {_changed(True)} BEGIN {_moves(True, True, True)}; END",
        }
        for event, body in ddl.items():
            op.execute(f"CREATE TRIGGER trg_{TABLE}_{event} {body}")
        return
    op.execute(
        f"""
        CREATE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                {_moves(False, False, True)};
            ELSIF TG_OP = 'DELETE' THEN
                {_moves(False, True, False)};
            ELSIF {_changed(False)} THEN
                {_moves(False, True, True)};
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        f"CREATE TRIGGER {PG_TRIGGER} AFTER INSERT OR DELETE OR UPDATE OF "
        f"{', '.join(PG_WATCHED)} ON whatsapp_messages "
        f"FOR EACH ROW EXECUTE FUNCTION {PG_FUNCTION}()"
    )


def drop_triggers() -> None:
    """Remove the rollup's triggers (both dialects)."""
    if op.get_bind().dialect.name == "sqlite":
        for event in SQLITE_EVENTS:
            op.execute(f"DROP TRIGGER IF EXISTS trg_{TABLE}_{event}")
        return
    op.execute(f"DROP TRIGGER IF EXISTS {PG_TRIGGER} ON whatsapp_messages")
    op.execute(f"DROP FUNCTION IF EXISTS {PG_FUNCTION}()")


def backfill_sql(kind: int, sqlite: bool) -> str:
    """INSERT ... SELECT of every `kind` cell from the messages as they are now."""
    cell = keys("", kind, sqlite)
    selected = ", ".join(f"{e} AS {c}" for c, e in cell.items())
    return (
        f"INSERT INTO {TABLE} ({', '.join([*cell, 'messages'])}) "  # noqa: S608
        f"SELECT {selected}, COUNT(*) FROM whatsapp_messages "
        f"WHERE {counts('', kind)} = 1 "
        f"GROUP BY {', '.join(e for c, e in cell.items() if c != 'kind')}"
    )


def upgrade() -> None:
    """Create the rollup, backfill it, install its triggers; index the failures."""
    op.create_table(
        TABLE,
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("hour", core.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("template_name", sa.String(length=512), nullable=False),
        sa.Column("null_bits", sa.SmallInteger(), nullable=False),
        sa.Column("value", sa.SmallInteger(), nullable=False),
        sa.Column("messages", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint(
            *("tenant_id", "kind", "hour", "template_name", "null_bits", "value"),
            name=op.f(f"pk_{TABLE}"),
        ),
        sqlite_with_rowid=False,
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    for kind in KINDS:
        op.execute(backfill_sql(kind, sqlite))
    install_triggers()
    op.create_index(
        FAILURES_INDEX,
        "whatsapp_messages",
        FAILURES_COLUMNS,
        unique=False,
        sqlite_where=sa.text("status = 'failed'"),
        postgresql_where=sa.text("status = 'failed'"),
    )


def downgrade() -> None:
    """Back to the previous revision: no failures index, rollup triggers or table."""
    op.drop_index(FAILURES_INDEX, table_name="whatsapp_messages")
    drop_triggers()
    op.drop_table(TABLE)
