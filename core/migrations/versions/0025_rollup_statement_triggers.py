"""PostgreSQL: the analytics rollups kept by statement triggers (one upsert per cell)

Revision ID: 0025_rollup_statement_triggers
Revises: 0023_po_reminders
Create Date: 2026-12-05 03:00:00

The rollups of 0009 (`analytics_hourly`, `analytics_supplier_weekly`) and 0026
(`analytics_hourly_stages`) were kept on PostgreSQL by AFTER ROW functions: every
message a statement changed upserted its cells, up to six upserts a message. The
webhook applier updates hundreds of messages per statement, most of them in the same
few cells (one template, one hour), so each cell was rewritten hundreds of times in one
transaction, each upsert walking the cell's growing chain of row versions: half of the
PostgreSQL time of a webhook status (issue 13).

Here each rollup gets three AFTER STATEMENT triggers (insert, update, delete) reading
the statement's transition tables: the old rows' counts out, the new rows' in, summed
per cell, and one upsert per cell whose sum moved, in key order (so two transactions
lock cells in one order). Same cells and counts as the row triggers (a cell whose sum
is zero is not written). SQLite keeps its row triggers (it has no transition tables,
and its single writer never had the hot-cell chains): nothing changes there.

Note for later migrations: PostgreSQL allows no column list on a trigger with
transition tables, so these fire on every statement that writes whatsapp_messages; an
UPDATE changing no column a rollup reads (a claim) ends at a first check, and one that
moves no count sums to nothing and writes no cell.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0025_rollup_statement_triggers"
down_revision: str | Sequence[str] | None = "0023_po_reminders"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = "wanotify_rollup_{event}"
TRIGGER = "trg_rollup_{event}"
EVENTS = ("insert", "update", "delete")


def _sibling(name: str) -> ModuleType:
    """Another migration of this directory, loaded by file (its name starts with a digit)."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_wanotify_migration_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _delta_upsert(
    table: str,
    keys: Callable[[str], dict[str, str]],
    counts: Callable[[str], dict[str, str]],
    sources: Sequence[tuple[str, str]],
) -> str:
    """Sum the counts of every (sign, transition table) in `sources` per cell of `table`
    and add each cell's sums to it, creating it if missing; cells summing to zero skipped."""
    key_names = list(keys("r."))
    count_names = list(counts("r."))
    parts = []
    for sign, source in sources:
        selected = [f"{e} AS {c}" for c, e in keys("r.").items()]
        selected += [f"{sign}{e} AS {c}" for c, e in counts("r.").items()]
        parts.append(f"SELECT {', '.join(selected)} FROM {source} r")  # noqa: S608
    sums = ", ".join(f"SUM(d.{c})" for c in count_names)
    moved = " OR ".join(f"SUM(d.{c}) <> 0" for c in count_names)
    grouped = ", ".join(f"d.{k}" for k in key_names)
    sets = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in count_names)
    return (
        f"INSERT INTO {table} ({', '.join([*key_names, *count_names])}) "  # noqa: S608
        f"SELECT {grouped}, {sums} FROM ({' UNION ALL '.join(parts)}) d "
        f"GROUP BY {grouped} HAVING {moved} ORDER BY {grouped} "
        f"ON CONFLICT ({', '.join(key_names)}) DO UPDATE SET {sets}"
    )


def statements(sources: Sequence[tuple[str, str]]) -> list[str]:
    """The upserts keeping every rollup for a statement's transition `sources`
    ((sign, table name) pairs: '-' for the old rows, '' for the new)."""
    rollup, stages = _sibling("0009_analytics_rollup"), _sibling("0026_analytics_speed")
    found = []
    for table, (keys_of, counts_of, _watched) in rollup.ROLLUPS.items():
        found.append(_delta_upsert(table, partial(keys_of, sqlite=False), counts_of, sources))
    kinds = []
    for kind in stages.KINDS:
        for sign, source in sources:
            cell = stages.keys("r.", kind, False)
            selected = ", ".join(f"{e} AS {c}" for c, e in cell.items())
            kinds.append(
                f"SELECT {selected}, {sign}{stages.counts('r.', kind)} AS messages "  # noqa: S608
                f"FROM {source} r"
            )
    names = list(stages.keys("r.", 0, False))
    grouped = ", ".join(f"d.{k}" for k in names)
    found.append(
        f"INSERT INTO {stages.TABLE} ({', '.join([*names, 'messages'])}) "  # noqa: S608
        f"SELECT {grouped}, SUM(d.messages) FROM ({' UNION ALL '.join(kinds)}) d "
        f"GROUP BY {grouped} HAVING SUM(d.messages) <> 0 ORDER BY {grouped} "
        f"ON CONFLICT ({', '.join(names)}) DO UPDATE SET "
        f"messages = {stages.TABLE}.messages + excluded.messages"
    )
    return found


#: event -> (transition tables it references, (sign, table) sources)
_SOURCES = {
    "insert": ("NEW TABLE AS new_rows", [("", "new_rows")]),
    "update": (
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        [("-", "old_rows"), ("", "new_rows")],
    ),
    "delete": ("OLD TABLE AS old_rows", [("-", "old_rows")]),
}


def watched() -> list[str]:
    """The message columns some rollup count or cell depends on."""
    rollup, stages = _sibling("0009_analytics_rollup"), _sibling("0026_analytics_speed")
    columns = {c for _keys, _counts, cols in rollup.ROLLUPS.values() for c in cols}
    return sorted(columns | set(stages.PG_WATCHED))


def _unchanged_guard() -> str:
    """plpgsql ending an UPDATE's trigger early when every row kept its id and each watched
    column (a claim, a retry time): a trigger with transition tables takes no column list."""
    olds = ", ".join(f"o.{c}" for c in watched())
    news = ", ".join(f"n.{c}" for c in watched())
    same = (
        "SELECT count(*) FROM old_rows o JOIN new_rows n ON n.id = o.id "  # noqa: S608
        f"AND ROW({olds}) IS NOT DISTINCT FROM ROW({news})"
    )
    return f"IF ({same}) = (SELECT count(*) FROM old_rows) THEN RETURN NULL; END IF;"  # noqa: S608


def upgrade() -> None:
    """PostgreSQL: the row triggers of 0009 and 0026 replaced by statement triggers."""
    if op.get_bind().dialect.name != "postgresql":
        return
    _sibling("0009_analytics_rollup").drop_triggers()
    _sibling("0026_analytics_speed").drop_triggers()
    for event in EVENTS:
        referencing, sources = _SOURCES[event]
        body = ";\n".join(statements(sources))
        if event == "update":
            body = f"{_unchanged_guard()}\n{body}"
        op.execute(
            f"CREATE FUNCTION {FUNCTION.format(event=event)}() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN {body}; RETURN NULL; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {TRIGGER.format(event=event)} AFTER {event.upper()} ON "
            f"whatsapp_messages REFERENCING {referencing} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION {FUNCTION.format(event=event)}()"
        )


def downgrade() -> None:
    """Back to the row triggers of 0009 and 0026 (the counts are the same)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for event in EVENTS:
        op.execute(f"DROP TRIGGER IF EXISTS {TRIGGER.format(event=event)} ON whatsapp_messages")
        op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION.format(event=event)}()")
    _sibling("0009_analytics_rollup").install_triggers()
    _sibling("0026_analytics_speed").install_triggers()
