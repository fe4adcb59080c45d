"""`core.webhooks.inbox`: on SQLite, bodies wait in a file of their own until the applier
moves them into `webhook_receipts`, each exactly once, whatever fails when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from core import migrate
from core.db import get_engine
from core.webhooks import inbox as inbox_module
from core.webhooks.apply import apply_next_batch
from core.webhooks.health import read_health
from core.webhooks.inbox import (
    INBOX,
    InboxWriter,
    inbox_path,
    open_inbox,
    take_into_receipts,
    waiting_receipts,
)
from core.webhooks.journal import ReceiptIn
from core.webhooks.sql import write_transaction
from tests.core.webhooks.helpers import (
    T0,
    add_message,
    journalled,
    message_row,
    status,
    statuses_body,
)

pytestmark = pytest.mark.clock  # decides by dates or ages: also run a year ahead


@pytest.fixture
def main(tmp_path: Path) -> Engine:
    """A migrated SQLite database (the inbox exists for SQLite files only)."""
    url = f"sqlite:///{tmp_path / 'wanotify.db'}"
    migrate.upgrade(url)
    return get_engine(url)


def receipt(wamid: str, word: str = "sent", at: datetime | None = None) -> ReceiptIn:
    body = statuses_body(status(wamid, word, T0))
    return ReceiptIn(body, at or datetime.now(UTC), 1)


def receipt_rows(main: Engine) -> list[tuple[str, bool]]:
    with main.connect() as conn:
        rows = conn.execute(
            text("SELECT body_sha256, applied_at FROM webhook_receipts ORDER BY id")
        )
        return [(r[0], r[1] is not None) for r in rows]


def inbox_ids(main: Engine) -> list[int]:
    inbox = open_inbox(main, create=False)
    assert inbox is not None
    with inbox.engine.connect() as conn:
        return [r[0] for r in conn.execute(text(f"SELECT id FROM {INBOX.name} ORDER BY id"))]


def test_only_sqlite_files_have_an_inbox(main: Engine, tmp_path: Path) -> None:
    assert inbox_path(main) == tmp_path / "wanotify.db-webhook-inbox"
    assert inbox_path(create_engine("sqlite://")) is None
    assert inbox_path(create_engine("postgresql+psycopg://postgres@127.0.0.1/nowhere")) is None
    assert open_inbox(main, create=False) is None  # readers never create it
    assert not (tmp_path / "wanotify.db-webhook-inbox").exists()


def test_taking_moves_each_row_once_and_advances_with_the_transaction(main: Engine) -> None:
    write = InboxWriter(main)
    write([receipt(f"wamid.T{n}") for n in range(5)])
    inbox = open_inbox(main, create=False)
    assert inbox is not None
    with write_transaction(main) as conn:
        assert take_into_receipts(conn, inbox, max_receipts=3) == 3
    with write_transaction(main) as conn:
        assert take_into_receipts(conn, inbox, max_receipts=10) == 2
        assert take_into_receipts(conn, inbox, max_receipts=10) == 0
    assert len(receipt_rows(main)) == 5
    assert waiting_receipts(main) == []
    write.close()


def test_a_rolled_back_batch_puts_its_rows_back(main: Engine) -> None:
    write = InboxWriter(main)
    write([receipt("wamid.RB1"), receipt("wamid.RB2")])
    inbox = open_inbox(main, create=False)
    assert inbox is not None
    with pytest.raises(RuntimeError), write_transaction(main) as conn:
        assert take_into_receipts(conn, inbox, max_receipts=10) == 2
        raise RuntimeError("the applier died mid-batch")
    assert receipt_rows(main) == []
    assert len(waiting_receipts(main)) == 2  # nothing lost, nothing marked taken
    with write_transaction(main) as conn:
        assert take_into_receipts(conn, inbox, max_receipts=10) == 2
    assert len(receipt_rows(main)) == 2
    write.close()


def test_retries_of_a_body_are_stored_once(main: Engine) -> None:
    write = InboxWriter(main)
    same = receipt("wamid.DUP")
    write([same, same])  # Meta retried before our first 200 reached it
    inbox = open_inbox(main, create=False)
    assert inbox is not None
    with write_transaction(main) as conn:
        take_into_receipts(conn, inbox, max_receipts=10)
    write([same])  # and once more, after the first was already taken
    with write_transaction(main) as conn:
        assert take_into_receipts(conn, inbox, max_receipts=10) == 1
    assert len(receipt_rows(main)) == 1
    write.close()


def test_the_applier_applies_what_waits_in_the_inbox(main: Engine) -> None:
    mid = add_message(main, wamid="wamid.AP")
    write = InboxWriter(main)
    write([receipt("wamid.AP", "sent"), receipt("wamid.AP", "read")])
    health = read_health(main)
    assert health.backlog == 2 and health.last_event_at is not None
    report = apply_next_batch(main)
    assert report.receipts == 2 and report.statuses.applied == 2
    assert message_row(main, mid)["status"] == "read"
    assert read_health(main).backlog == 0
    assert read_health(main).last_event_at == health.last_event_at
    write.close()


def test_a_new_inbox_file_is_read_from_its_first_row(main: Engine, tmp_path: Path) -> None:
    """Progress belongs to one inbox file: a replaced file is not skipped up to it."""
    write = InboxWriter(main)
    write([receipt(f"wamid.OLD{n}") for n in range(3)])
    apply_next_batch(main)
    old = open_inbox(main, create=False)
    assert old is not None
    old.engine.dispose()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{inbox_path(main)}{suffix}").unlink(missing_ok=True)
    write([receipt("wamid.NEW")])  # ids start at 1 again in the new file
    new = open_inbox(main, create=False)
    assert new is not None and new.identity != old.identity
    assert [w.body_sha256 for w in waiting_receipts(main)] == [receipt("wamid.NEW").sha256]
    assert apply_next_batch(main).receipts == 1
    assert len(journalled(main)) == 4
    write.close()


def test_taken_rows_are_pruned_after_a_while_and_waiting_ones_never(
    main: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox_module, "PRUNE_EVERY", 0.0)
    long_ago = datetime.now(UTC) - inbox_module.KEEP_TAKEN - timedelta(seconds=5)
    write = InboxWriter(main)
    write([receipt(f"wamid.P{n}", at=long_ago) for n in range(4)])
    inbox = open_inbox(main, create=False)
    assert inbox is not None
    with write_transaction(main) as conn:
        take_into_receipts(conn, inbox, max_receipts=2)  # P0, P1 taken; P2, P3 wait
    write([receipt("wamid.RECENT")])  # prunes with this commit
    assert inbox_ids(main) == [3, 4, 5]
    with write_transaction(main) as conn:
        take_into_receipts(conn, inbox, max_receipts=10)
    write([receipt("wamid.LAST")])
    assert inbox_ids(main) == [5, 6]  # the recent taken row stays a while (health relies on it)
    write.close()


def test_a_hostile_or_broken_inbox_row_is_set_aside_not_lost(main: Engine) -> None:
    """A row written by other means that is not a webhook body: counted, the rest apply."""
    mid = add_message(main, wamid="wamid.OK")
    write = InboxWriter(main)
    write([receipt("wamid.OK", "delivered")])
    inbox = open_inbox(main, create=False)
    assert inbox is not None
    with inbox.engine.begin() as conn:
        conn.execute(
            INBOX.insert(),
            {
                "received_at": datetime.now(UTC),
                "body_sha256": "0" * 64,
                "body": "{not json",
                "event_count": 1,
            },
        )
    report = apply_next_batch(main)
    assert report.receipts == 2 and report.issues == 1
    assert message_row(main, mid)["status"] == "delivered"
    assert read_health(main).backlog == 0
    write.close()


def test_the_inbox_cannot_be_created_where_the_database_cannot_be(tmp_path: Path) -> None:
    missing = get_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    write = InboxWriter(missing)
    with pytest.raises(Exception):  # noqa: B017 - the journal turns any failure into a 503
        write([receipt("wamid.X")])
    assert read_health(missing).database_ok is False


def test_a_batch_cut_at_its_limit_says_more_is_waiting(main: Engine) -> None:
    write = InboxWriter(main)
    write([receipt(f"wamid.M{n}") for n in range(5)])
    first = apply_next_batch(main, max_receipts=3)
    assert first.receipts == 3 and first.more_waiting  # the applier goes again at once
    second = apply_next_batch(main, max_receipts=3)
    assert second.receipts == 2 and not second.more_waiting  # it waits for the next commit
    write.close()
