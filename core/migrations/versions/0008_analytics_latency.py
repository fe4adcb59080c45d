"""latency seconds and bins, and funnel stage flags, on each message, kept by triggers

Revision ID: 0008_analytics_latency
Revises: 0007_analytics_paths
Create Date: 2026-12-01 22:45:00

The time-to-deliver and time-to-read charts parsed two timestamps per message with
julianday() and grouped every message in a temporary sort (about a second each for a
million messages on SQLite). Each message now carries `deliver_seconds` and
`read_seconds` (whole seconds from sent, or failing that accepted, to delivered / read;
NULL while either end is missing) and `deliver_bin` / `read_bin`, the index of the
latency histogram bin (`core.stats.LATENCY_EDGES`, copied below) the seconds fall in,
and `stage_flags`, the funnel stages it reached as bits (`core.stats.StageFlag`, copied
below: sent, delivered, read, replied, failed, left the queue, cancelled; a new pending
message is 0).
Database triggers keep all four right whichever code writes the timestamps: on SQLite
an AFTER trigger that rewrites them only when they differ from what the timestamps say,
on PostgreSQL a BEFORE trigger that sets them on the row being written. Two partial
indexes lead with (tenant, bin, created_at) and one with (tenant, stage_flags,
created_at), so each bin or combination of stages is one index range of the date range,
counted with no sort and no column decoded. Existing rows are backfilled here.

Notes for later migrations: changing the chart's bins needs a migration that recomputes
the bins (a test compares EDGES with core.stats). On SQLite, a batch operation that
RECREATES whatsapp_messages (drop/alter a column) drops these triggers: call
`install_triggers` again after it.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_analytics_latency"
down_revision: str | Sequence[str] | None = "0007_analytics_paths"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Upper edges (seconds) of the latency bins, as core.stats.LATENCY_EDGES at this revision.
EDGES = (5, 15, 30, 60, 120, 300, 600, 1800, 3600, 10800, 21600, 43200, 86400, 259200)
#: Bits of stage_flags, as core.stats.StageFlag at this revision.
SENT, DELIVERED, READ, REPLIED, FAILED, DEQUEUED, CANCELLED = 1, 2, 4, 8, 16, 32, 64
QUEUED_STATUSES = ("pending", "sending", "needs_attention")
INDEXES = {
    "ix_whatsapp_messages_deliver_latency": "deliver_bin",
    "ix_whatsapp_messages_read_latency": "read_bin",
}
INDEX_TAIL = ["created_at", "status", "template_name", "supplier_id"]
STAGE_INDEX = "ix_whatsapp_messages_stages"
STAGE_INDEX_COLUMNS = ["tenant_id", "stage_flags", "created_at", "template_name", "supplier_id"]
WATCHED = (
    "status, accepted_at, sent_at, delivered_at, read_at, replied_at, deliver_seconds, "
    "read_seconds, deliver_bin, read_bin, stage_flags"
)
PG_FUNCTION = "wanotify_message_latency"
PG_TRIGGER = "trg_message_latency"
SQLITE_TRIGGERS = ("trg_message_latency_insert", "trg_message_latency_update")


def sqlite_seconds(row: str, end: str) -> str:
    """Whole seconds from sent/accepted to `end` of `row` (prefix "NEW." or ""), or NULL.

    SQLite keeps a parsed time as integer milliseconds, so the julianday difference
    rounded to milliseconds is exact; integer division gives whole seconds (toward
    zero: a negative clock skew still lands in the first bin). The raw `* 86400.0`
    difference the charts used before was off by up to ~50 us and put most latencies of
    exactly 5 s, 15 s... in the bin below.
    """
    start = f"COALESCE({row}sent_at, {row}accepted_at)"
    return (
        f"(CAST(round((julianday({row}{end}) - julianday({start})) * 86400000.0) AS INTEGER)"
        " / 1000)"
    )


def pg_seconds(row: str, end: str) -> str:
    """The same on PostgreSQL (exact to the microsecond, rounded down)."""
    start = f"COALESCE({row}sent_at, {row}accepted_at)"
    return f"FLOOR(EXTRACT(EPOCH FROM ({row}{end} - {start})))::bigint"


def bin_of(seconds: str) -> str:
    """The bin index (0..len(EDGES)) of a seconds expression; NULL stays NULL."""
    cases = " ".join(f"WHEN {seconds} < {edge} THEN {i}" for i, edge in enumerate(EDGES))
    return f"(CASE WHEN {seconds} IS NULL THEN NULL {cases} ELSE {len(EDGES)} END)"


def stage_flags(row: str) -> str:
    """The stage bits of `row` (prefix "NEW." or ""), the same SQL on both dialects."""
    queued = ", ".join(f"'{status}'" for status in QUEUED_STATUSES)
    return (
        f"((CASE WHEN {row}accepted_at IS NOT NULL OR {row}sent_at IS NOT NULL "
        f"THEN {SENT} ELSE 0 END)"
        f" + (CASE WHEN {row}delivered_at IS NOT NULL THEN {DELIVERED} ELSE 0 END)"
        f" + (CASE WHEN {row}read_at IS NOT NULL THEN {READ} ELSE 0 END)"
        f" + (CASE WHEN {row}replied_at IS NOT NULL THEN {REPLIED} ELSE 0 END)"
        f" + (CASE WHEN {row}status = 'failed' THEN {FAILED} ELSE 0 END)"
        f" + (CASE WHEN {row}status IN ({queued}) THEN 0 ELSE {DEQUEUED} END)"
        f" + (CASE WHEN {row}status = 'cancelled' THEN {CANCELLED} ELSE 0 END))"
    )


def _values(row: str, sqlite: bool) -> dict[str, str]:
    seconds = sqlite_seconds if sqlite else pg_seconds
    deliver, read = seconds(row, "delivered_at"), seconds(row, "read_at")
    return {
        "deliver_seconds": deliver,
        "read_seconds": read,
        "deliver_bin": bin_of(deliver),
        "read_bin": bin_of(read),
        "stage_flags": stage_flags(row),
    }


def install_triggers() -> None:
    """Create the triggers that keep the latency columns right (both dialects)."""
    if op.get_bind().dialect.name == "sqlite":
        values = _values("NEW.", sqlite=True)
        stale = " OR ".join(f"NEW.{col} IS NOT {expr}" for col, expr in values.items())
        assignments = ", ".join(f"{col} = {expr}" for col, expr in values.items())
        events = ("AFTER INSERT", f"AFTER UPDATE OF {WATCHED}")
        for name, event in zip(SQLITE_TRIGGERS, events, strict=True):
            op.execute(
                f"CREATE TRIGGER {name} {event} ON whatsapp_messages WHEN {stale} BEGIN "  # noqa: S608
                f"UPDATE whatsapp_messages SET {assignments} WHERE rowid = NEW.rowid; END"
            )
        return
    op.execute(
        f"""
        CREATE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.deliver_seconds := {pg_seconds('NEW.', 'delivered_at')};
            NEW.read_seconds := {pg_seconds('NEW.', 'read_at')};
            NEW.deliver_bin := {bin_of('NEW.deliver_seconds')};
            NEW.read_bin := {bin_of('NEW.read_seconds')};
            NEW.stage_flags := {stage_flags('NEW.')};
            RETURN NEW;
        END $$
        """
    )
    op.execute(
        f"CREATE TRIGGER {PG_TRIGGER} BEFORE INSERT OR UPDATE ON whatsapp_messages "
        f"FOR EACH ROW EXECUTE FUNCTION {PG_FUNCTION}()"
    )


def drop_triggers() -> None:
    """Remove the latency triggers (both dialects)."""
    if op.get_bind().dialect.name == "sqlite":
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        return
    op.execute(f"DROP TRIGGER IF EXISTS {PG_TRIGGER} ON whatsapp_messages")
    op.execute(f"DROP FUNCTION IF EXISTS {PG_FUNCTION}()")


def upgrade() -> None:
    """Add the columns, backfill them, install the triggers, create the latency indexes."""
    with op.batch_alter_table("whatsapp_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deliver_seconds", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("read_seconds", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("deliver_bin", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("read_bin", sa.SmallInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("stage_flags", sa.SmallInteger(), server_default="0", nullable=False)
        )
    values = _values("", sqlite=op.get_bind().dialect.name == "sqlite")
    assignments = ", ".join(f"{col} = {expr}" for col, expr in values.items())
    op.execute(f"UPDATE whatsapp_messages SET {assignments}")  # noqa: S608 (constants only)
    install_triggers()
    with op.batch_alter_table("whatsapp_messages", schema=None) as batch_op:
        for name, column in INDEXES.items():
            batch_op.create_index(
                name,
                ["tenant_id", column, *INDEX_TAIL],
                unique=False,
                sqlite_where=sa.text(f"{column} IS NOT NULL"),
                postgresql_where=sa.text(f"{column} IS NOT NULL"),
            )
        batch_op.create_index(STAGE_INDEX, STAGE_INDEX_COLUMNS, unique=False)


def downgrade() -> None:
    """Back to 0007: no latency indexes, triggers or columns."""
    with op.batch_alter_table("whatsapp_messages", schema=None) as batch_op:
        batch_op.drop_index(STAGE_INDEX)
        for name in INDEXES:
            batch_op.drop_index(name)
    drop_triggers()
    # A plain DROP COLUMN (SQLite >= 3.35): batch mode would recreate the table, which
    # the reply triggers of 0005 (they update whatsapp_messages) do not survive.
    for column in ("stage_flags", "read_bin", "deliver_bin", "read_seconds", "deliver_seconds"):
        op.execute(f"ALTER TABLE whatsapp_messages DROP COLUMN {column}")
