"""Alert delivery end to end: events to a real SMTP server (aiosmtpd) and a real HTTP
chat receiver, with grouping, retries, preferences and hostile text, time from the
injected clock."""

from __future__ import annotations

import json
import smtplib
from datetime import UTC, datetime, timedelta
from email.message import Message

import pytest
from sqlalchemy import Engine, insert, select, update

from core import clock
from core.alerts import events
from core.alerts.config import AlertSettings, load_alert_settings
from core.alerts.delivery import deliver_pending
from core.alerts.kinds import AlertKind
from core.alerts.outbox import list_alerts, status_line
from core.alerts.preferences import Choice, set_choices
from core.alerts.rules import OUTBOX, fan_out
from core.models.users import User
from tests.fixtures.alerts import SmtpServer, TlsFiles, free_port, start_smtp
from tests.fixtures.sandbox import WebhookReceiver

pytestmark = pytest.mark.clock

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
HOSTILE = "<!channel> <https://evil.example|click> & *bold* \u202egnp.exe\r\nBcc: x@evil"


def settings_for(server: SmtpServer | None = None, **extra: object) -> AlertSettings:
    values: dict[str, object] = {"ALERTS_SMTP_TLS": "none", "ALERTS_WINDOW_MINUTES": 15}
    if server is not None:
        values |= {
            "ALERTS_SMTP_HOST": server.host,
            "ALERTS_SMTP_PORT": server.port,
            "ALERTS_SMTP_FROM": "alerts@wanotify.test",
            "ALERTS_SMTP_TIMEOUT": 5,
        }
    return load_alert_settings(**(values | extra))


def person(
    engine: Engine, name: str, role: str, tenant: str = "acme", email: str | None = None
) -> int:
    """A user with an e-mail address (inserted directly: no bcrypt work in these tests)."""
    with engine.begin() as conn:
        return int(
            conn.execute(
                insert(User.__table__)  # type: ignore[attr-defined]
                .values(
                    username=name, display_name=name, password_hash="-", role=role,
                    tenant_id=tenant, is_active=True, is_demo=False,
                    email=email or f"{name}@acme.test", created_at=T0, updated_at=T0,
                )
                .returning(User.__table__.c.id)  # type: ignore[attr-defined]
            ).scalar_one()
        )  # fmt: skip


def reject(
    engine: Engine, po: str, by: str | None, reply: str = "Rechazar", at: datetime = T0
) -> None:
    facts = {"po_number": po, "supplier": "Hierros Díaz", "reply": reply, "at": at.isoformat()}
    with engine.begin() as conn:
        events.emit(
            conn, AlertKind.PO_REJECTED, tenant_id="acme", facts=facts, now=at,
            usernames=[by] if by else [], fallback_role="buyer",
        )  # fmt: skip


def body(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(message.get_content_charset() or "utf-8")


def test_a_rejection_reaches_the_buyer_who_sent_it_and_no_one_else(
    engine: Engine, smtp_server: SmtpServer
) -> None:
    person(engine, "ana", "buyer")
    person(engine, "bob", "buyer")
    person(engine, "root", "admin")
    reject(engine, "PO-1", "ana")
    report = deliver_pending(engine, settings_for(smtp_server), now=T0)
    assert (report.messages, report.alerts, report.failed) == (1, 1, 0)
    [(rcpt, message)] = smtp_server.messages
    assert rcpt == ["ana@acme.test"]
    assert message["Subject"] == "[wanotify] Hierros Díaz rejected PO PO-1"
    assert "Their answer: Rechazar" in body(message)
    # nothing left to send, nothing sent twice
    assert deliver_pending(engine, settings_for(smtp_server), now=T0).messages == 0
    assert [a.status for a in list_alerts(engine)] == ["sent"]


def test_without_a_known_sender_the_tenants_buyers_are_told(
    engine: Engine, smtp_server: SmtpServer
) -> None:
    person(engine, "ana", "buyer")
    person(engine, "other", "buyer", tenant="globex")
    reject(engine, "PO-2", "erp event 17")
    deliver_pending(engine, settings_for(smtp_server), now=T0)
    assert [rcpt for rcpt, _ in smtp_server.messages] == [["ana@acme.test"]]


def test_hostile_text_stays_plain_text_in_mail_and_escaped_in_chat(
    engine: Engine, smtp_server: SmtpServer, webhook_receiver: WebhookReceiver
) -> None:
    person(engine, "ana", "buyer")
    reject(engine, "PO-3", "ana", reply=HOSTILE)
    settings = settings_for(smtp_server, ALERTS_CHAT_WEBHOOK_URL=webhook_receiver.url)
    assert deliver_pending(engine, settings, now=T0).messages == 2
    [(_, message)] = smtp_server.messages
    assert message.get_content_type() == "text/plain"
    assert message["Bcc"] is None  # the reply's line break made no header
    text = body(message)
    assert "<!channel>" in text and "\u202e" not in text  # shown as written, no bidi trick
    [post] = webhook_receiver.accepted()
    chat = post.json["text"]
    assert set(post.json) == {"text"}
    assert "<" not in chat and ">" not in chat
    assert "&lt;!channel&gt; &lt;https://evil.example|click&gt; &amp; *bold*" in chat


def test_a_failed_smtp_server_loses_nothing_and_is_retried_with_backoff(engine: Engine) -> None:
    person(engine, "ana", "buyer")
    port = free_port()  # nothing listens there yet
    reject(engine, "PO-4", "ana")
    down = settings_for(
        None, ALERTS_SMTP_HOST="127.0.0.1", ALERTS_SMTP_PORT=port,
        ALERTS_SMTP_FROM="alerts@wanotify.test", ALERTS_SMTP_TIMEOUT=2,
    )  # fmt: skip
    report = deliver_pending(engine, down, now=T0)
    assert (report.messages, report.failed) == (0, 1)
    [row] = list_alerts(engine)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error and f"127.0.0.1:{port}" in row.last_error
    assert status_line(engine) == f"Alerts: 1 waiting · last delivery error: {row.last_error}"
    assert row.next_attempt_at == T0 + timedelta(seconds=30)
    server = start_smtp(port=port)
    try:
        assert deliver_pending(engine, down, now=T0 + timedelta(seconds=10)).messages == 0
        assert deliver_pending(engine, down, now=T0 + timedelta(seconds=31)).messages == 1
        assert [rcpt for rcpt, _ in server.messages] == [["ana@acme.test"]]
    finally:
        server.stop()
    assert [(a.status, a.attempts) for a in list_alerts(engine)] == [("sent", 1)]
    assert status_line(engine) == "Alerts: 0 waiting"


def test_alerts_within_the_window_go_out_as_one_digest(
    engine: Engine, smtp_server: SmtpServer
) -> None:
    person(engine, "ana", "buyer")
    settings = settings_for(smtp_server)
    with clock.frozen(T0) as move:
        reject(engine, "PO-10", "ana")
        assert deliver_pending(engine, settings).messages == 1
        move(T0 + timedelta(minutes=2))
        reject(engine, "PO-11", "ana", at=clock.now())
        reject(engine, "PO-12", "ana", at=clock.now())
        report = deliver_pending(engine, settings)
        assert (report.messages, report.held) == (0, 2)
        move(T0 + timedelta(minutes=14, seconds=59))
        assert deliver_pending(engine, settings).messages == 0
        move(T0 + timedelta(minutes=15))
        report = deliver_pending(engine, settings)
    assert (report.messages, report.alerts, report.digests) == (1, 2, 1)
    subjects = [message["Subject"] for _, message in smtp_server.messages]
    assert subjects == [
        "[wanotify] Hierros Díaz rejected PO PO-10",
        "[wanotify] 2 alerts: A supplier rejects a PO I sent",
    ]
    digest = body(smtp_server.messages[1][1])
    assert "PO-11" in digest and "PO-12" in digest


def test_each_user_gets_only_the_kinds_and_channels_they_chose(
    engine: Engine, smtp_server: SmtpServer, webhook_receiver: WebhookReceiver
) -> None:
    # the environment's number is the default tenant's: its admins hear, acme's do not
    root = person(engine, "root", "admin", tenant="default")
    person(engine, "ops", "admin", tenant="default")
    person(engine, "ana", "buyer", tenant="default")
    person(engine, "boss", "admin")  # acme's admin: another tenant's number is not theirs
    set_choices(engine, root, {AlertKind.SENDING_PAUSED: Choice(email=False, chat=False)})
    with engine.begin() as conn:
        events.sending_paused(conn, "106540352242922", "The access token has expired", 190, T0)
    settings = settings_for(smtp_server, ALERTS_CHAT_WEBHOOK_URL=webhook_receiver.url)
    deliver_pending(engine, settings, now=T0)
    assert [rcpt for rcpt, _ in smtp_server.messages] == [["ops@acme.test"]]  # not root, not ana
    [post] = webhook_receiver.accepted()  # one post for the channel, though two could want it
    assert "Sending paused for number 106540352242922" in post.json["text"]
    text = body(smtp_server.messages[0][1])
    assert "WHATSAPP_ACCESS_TOKEN" in text and "wanotify resume" in text  # what to do


def test_a_chat_webhook_that_fails_keeps_the_alert_and_its_url_secret(
    engine: Engine, webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    person(engine, "ana", "buyer")
    reject(engine, "PO-5", "ana")
    webhook_receiver.fail_next(1, 500)
    monkeypatch.setenv("ALERTS_CHAT_WEBHOOK_URLS", json.dumps({"acme": webhook_receiver.url}))
    settings = settings_for(None)
    assert deliver_pending(engine, settings, now=T0).failed == 1
    [row] = list_alerts(engine)
    assert row.recipient == "tenant:acme" and row.status == "pending"
    assert row.last_error == "chat webhook tenant:acme answered HTTP 500"
    assert deliver_pending(engine, settings, now=T0 + timedelta(minutes=1)).messages == 1
    assert len(webhook_receiver.accepted()) == 1


def test_starttls_with_a_login_against_a_self_signed_server(
    engine: Engine, smtp_tls_files: TlsFiles
) -> None:
    person(engine, "ana", "buyer")
    reject(engine, "PO-6", "ana")
    server = start_smtp(tls=smtp_tls_files, login=("mailer", "s3cret-pass"))
    try:
        untrusted = settings_for(
            server, ALERTS_SMTP_TLS="starttls", ALERTS_SMTP_USERNAME="mailer",
            ALERTS_SMTP_PASSWORD="s3cret-pass",
        )  # fmt: skip
        assert deliver_pending(engine, untrusted, now=T0).failed == 1  # certificate checked
        [row] = list_alerts(engine)
        assert row.last_error and "s3cret-pass" not in row.last_error
        trusted = settings_for(
            server, ALERTS_SMTP_TLS="starttls", ALERTS_SMTP_USERNAME="mailer",
            ALERTS_SMTP_PASSWORD="s3cret-pass", ALERTS_SMTP_CA_FILE=str(smtp_tls_files.cert),
        )  # fmt: skip
        assert deliver_pending(engine, trusted, now=T0 + timedelta(hours=1)).messages == 1
        assert [rcpt for rcpt, _ in server.messages] == [["ana@acme.test"]]
    finally:
        server.stop()


def test_implicit_tls(engine: Engine, smtp_tls_files: TlsFiles) -> None:
    person(engine, "ana", "buyer")
    reject(engine, "PO-7", "ana")
    server = start_smtp(tls=smtp_tls_files, implicit_tls=True)
    try:
        settings = settings_for(
            server, ALERTS_SMTP_TLS="tls", ALERTS_SMTP_CA_FILE=str(smtp_tls_files.cert)
        )
        assert deliver_pending(engine, settings, now=T0).messages == 1
        assert len(server.messages) == 1
    finally:
        server.stop()


def test_a_server_without_starttls_is_refused_when_starttls_is_required(
    engine: Engine, smtp_server: SmtpServer
) -> None:
    person(engine, "ana", "buyer")
    reject(engine, "PO-8", "ana")
    settings = settings_for(smtp_server, ALERTS_SMTP_TLS="starttls")
    assert deliver_pending(engine, settings, now=T0).failed == 1
    assert smtp_server.messages == []
    [row] = list_alerts(engine)
    assert row.last_error and "does not offer STARTTLS" in row.last_error
    with (  # the server really is plain SMTP
        pytest.raises(smtplib.SMTPException),
        smtplib.SMTP(smtp_server.host, smtp_server.port) as client,
    ):
        client.starttls()


def test_each_reader_gets_their_language(engine: Engine, smtp_server: SmtpServer) -> None:
    ana = person(engine, "ana", "buyer")
    with engine.begin() as conn:
        conn.execute(
            User.__table__.update()  # type: ignore[attr-defined]
            .where(User.__table__.c.id == ana)  # type: ignore[attr-defined]
            .values(locale="es")
        )
    reject(engine, "PO-20", "ana")
    deliver_pending(engine, settings_for(smtp_server), now=T0)
    [(_, message)] = smtp_server.messages
    assert message["Subject"] == "[wanotify] Hierros Díaz rechazó la OC PO-20"
    assert "Su respuesta: Rechazar" in body(message)


def test_an_event_older_than_two_days_is_dropped_not_sent(
    engine: Engine, smtp_server: SmtpServer
) -> None:
    person(engine, "ana", "buyer")
    reject(engine, "PO-21", "ana", at=T0)
    report = deliver_pending(engine, settings_for(smtp_server), now=T0 + timedelta(days=3))
    assert (report.fanned_out, report.messages) == (0, 0)


def test_a_group_another_process_is_sending_waits_and_a_dead_claim_expires(
    engine: Engine, smtp_server: SmtpServer
) -> None:
    person(engine, "ana", "buyer")
    reject(engine, "PO-9", "ana")
    settings = settings_for(smtp_server)
    fan_out(engine, settings, T0)
    with engine.begin() as conn:  # another worker claimed it, then died
        conn.execute(
            update(OUTBOX).values(claim_token="other", claimed_until=T0 + timedelta(minutes=5))
        )
    reject(engine, "PO-10", "ana")
    assert deliver_pending(engine, settings, now=T0).messages == 0  # its outcome decides
    report = deliver_pending(engine, settings, now=T0 + timedelta(minutes=6))  # lease over
    assert (report.messages, report.alerts) == (1, 2)
    with engine.connect() as conn:
        rows = conn.execute(select(OUTBOX.c.status, OUTBOX.c.claim_token)).all()
    assert rows == [("sent", None), ("sent", None)]
    assert len(smtp_server.messages) == 1


async def test_the_sender_worker_delivers_alerts_beside_its_dispatchers(
    engine: Engine, smtp_server: SmtpServer, sandbox_env: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import time

    from core.alerts.config import get_alert_settings
    from core.sender import run_worker
    from core.settings import get_settings

    person(engine, "root", "admin", tenant="default")  # the environment's number's tenant
    with engine.begin() as conn:  # now: the worker reads the clock, and drops stale news
        events.sending_paused(conn, "106540352242922", "The token expired", 190, clock.now())
    for name, value in {
        "ALERTS_SMTP_HOST": smtp_server.host, "ALERTS_SMTP_PORT": str(smtp_server.port),
        "ALERTS_SMTP_TLS": "none", "ALERTS_SMTP_FROM": "alerts@wanotify.test",
        "ALERTS_POLL_SECONDS": "0.05",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    get_alert_settings.cache_clear()
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(get_settings(), engine, stop=stop, worker_id="t"))
    try:
        deadline = time.monotonic() + 20
        while not smtp_server.messages and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await worker
        get_alert_settings.cache_clear()
    [(rcpt, message)] = smtp_server.messages
    assert rcpt == ["root@acme.test"]
    assert message["Subject"] == "[wanotify] Sending paused for number 106540352242922"


async def test_a_half_made_configuration_stops_the_worker(
    engine: Engine, sandbox_env: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.alerts.config import AlertConfigError, get_alert_settings
    from core.sender import run_worker
    from core.settings import get_settings

    monkeypatch.setenv("ALERTS_SMTP_HOST", "smtp.acme.test")
    get_alert_settings.cache_clear()
    try:
        with pytest.raises(AlertConfigError, match="missing ALERTS_SMTP_FROM"):
            await run_worker(get_settings(), engine, worker_id="t")
    finally:
        get_alert_settings.cache_clear()


def test_a_broken_address_fails_its_own_alert_only(engine: Engine, smtp_server: SmtpServer) -> None:
    person(engine, "ana", "buyer", email="ana@acme.test\r\nBcc: all@acme.test")
    person(engine, "bob", "buyer")
    reject(engine, "PO-30", None)  # to the tenant's buyers: both
    report = deliver_pending(engine, settings_for(smtp_server), now=T0)
    assert (report.messages, report.failed) == (1, 1)
    assert [rcpt for rcpt, _ in smtp_server.messages] == [["bob@acme.test"]]
    failed = [row for row in list_alerts(engine) if row.status == "pending"]
    assert len(failed) == 1 and failed[0].attempts == 1
    assert failed[0].last_error and failed[0].last_error.startswith("cannot write a mail")


def test_alerts_sent_long_ago_are_pruned_and_waiting_ones_never(
    engine: Engine, smtp_server: SmtpServer
) -> None:
    from core.alerts.events import EVENTS
    from core.alerts.outbox import prune

    person(engine, "ana", "buyer")
    reject(engine, "PO-40", "ana")
    deliver_pending(engine, settings_for(smtp_server), now=T0)
    reject(engine, "PO-41", "ana")
    fan_out(engine, settings_for(smtp_server), T0)  # waiting, never sent
    assert prune(engine, T0 + timedelta(days=89)) == 0
    assert prune(engine, T0 + timedelta(days=91)) == 2  # the sent row and its event
    assert [a.status for a in list_alerts(engine)] == ["pending"]
    with engine.connect() as conn:
        assert len(conn.execute(select(EVENTS.c.id)).all()) == 1
