"""The words of an alert, one or a digest, in the reader's language, safe for each channel.

A supplier's reply, a batch name or Meta's reason is data: control and bidirectional
characters are dropped (`plain`), e-mail is plain text (no HTML to inject into, header
values on one line), and chat text is escaped by Slack's rules (`&`, `<`, `>`), so no
outside text can become a mention (`<!channel>`), a link or a formatted message.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.alerts.kinds import AlertKind, label
from core.i18n import N_, _, ngettext

#: Longest subject line an alert mail gets.
MAX_SUBJECT = 180
_BIDI = frozenset(chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F])

#: What an admin does about a pause, by Meta's error code.
_ADVICE: dict[int, str] = {
    0: N_("Create a new access token (a system user's, in Meta Business Manager), set "
          "WHATSAPP_ACCESS_TOKEN and restart wanotify, then resume sending."),
    131031: N_("The WhatsApp Business Account is locked: contact Meta through Business "
               "Support Home; resume sending once it is unlocked."),
    131042: N_("Fix the payment method in WhatsApp Manager (Billing), then resume sending."),
    131045: N_("Register the phone number with the Cloud API (POST /PHONE_NUMBER_ID/register), "
               "then resume sending."),
    368: N_("Meta restricted the account for a policy reason: read the notice in WhatsApp "
            "Manager (Account quality) and resume sending once Meta lifts it."),
}  # fmt: skip
_ADVICE[190] = _ADVICE[0]
_ADVICE[133010] = _ADVICE[131045]
_ADVICE[131048] = _ADVICE[368]
_ADVICE[131064] = _ADVICE[368]
_PERMISSION_ADVICE = N_(
    "Give the app's token the whatsapp_business_messaging and whatsapp_business_management "
    "permissions, set it in WHATSAPP_ACCESS_TOKEN, then resume sending."
)
_GENERAL_ADVICE = N_("Fix the cause in Meta Business Manager, then resume sending.")
_MANUAL_ADVICE = N_("A person paused sending on purpose; resume it when ready.")


@dataclass(frozen=True)
class AlertText:
    """An alert's title (the mail subject, the chat's first line) and body."""

    title: str
    body: str


def plain(value: object) -> str:
    """Outside text as one safe string: no control or bidirectional-override characters
    (line breaks and tabs kept)."""
    text = "" if value is None else str(value)
    return "".join(
        c
        for c in text
        if c in "\n\t" or (unicodedata.category(c) not in ("Cc", "Cs") and c not in _BIDI)
    )


def one_line(value: object, limit: int = MAX_SUBJECT) -> str:
    """`plain` text on one line (line breaks become spaces), at most `limit` characters."""
    text = " ".join(plain(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def advice(code: int | None) -> str:
    """What to do about a pause with Meta error `code` (None: a person paused it)."""
    if code is None:
        return _(_MANUAL_ADVICE)
    if code in _ADVICE:
        return _(_ADVICE[code])
    if code in (3, 10) or 200 <= code < 300:
        return _(_PERMISSION_ADVICE)
    return _(_GENERAL_ADVICE)


def _when(value: object) -> str:
    if not isinstance(value, str):
        return "?"
    try:
        return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return one_line(value, 40)


def describe(kind: str, facts: Mapping[str, Any]) -> AlertText:
    """One alert in the current locale (`core.i18n.set_locale`), outside text made plain."""
    f = {key: plain(value) if isinstance(value, str) else value for key, value in facts.items()}
    unknown = _("unknown")
    if kind == AlertKind.PO_REJECTED:
        supplier = f.get("supplier") or f.get("phone") or _("A supplier")
        title = _("{supplier} rejected PO {po}").format(
            supplier=supplier, po=f.get("po_number") or unknown
        )
        body = "\n".join([
            _("Supplier: {supplier}").format(supplier=supplier),
            _("PO: {po}").format(po=f.get("po_number") or unknown),
            _("Their answer: {reply}").format(reply=f.get("reply") or unknown),
            _("When: {at}").format(at=_when(f.get("at"))),
            _("Open the PO's message in wanotify (Messages) to follow it up with the supplier."),
        ])  # fmt: skip
    elif kind == AlertKind.SENDING_PAUSED:
        raw_code = facts.get("code")
        code = raw_code if isinstance(raw_code, int) else None
        reason = f.get("reason") or unknown
        if code is not None:
            reason = _("{reason} (Meta error {code})").format(reason=reason, code=code)
        title = _("Sending paused for number {number}").format(number=f.get("phone_number_id"))
        body = "\n".join([
            _("Reason: {reason}").format(reason=reason),
            _("Since: {at}").format(at=_when(f.get("at"))),
            _("What to do: {advice}").format(advice=advice(code)),
            _("Resume on the Health page or with `wanotify resume`. Messages wait in the "
              "queue meanwhile: none is lost."),
        ])  # fmt: skip
    elif kind == AlertKind.BATCH_FAILURES:
        title = _("Batch {batch} finished with {failed} of {total} messages not sent").format(
            batch=f.get("batch") or unknown, failed=f.get("failed"), total=f.get("total")
        )
        body = "\n".join([
            title,
            _("Open the batch on the Bulk page to see why, and retry the failed rows there."),
        ])  # fmt: skip
    elif kind == AlertKind.TEMPLATE_HELD:
        status = str(f.get("status") or "")
        words = {
            "PAUSED": _("Meta paused template {template} ({language})"),
            "DISABLED": _("Meta disabled template {template} ({language})"),
            "REJECTED": _("Meta rejected template {template} ({language})"),
        }
        title = words.get(status, words["PAUSED"]).format(
            template=f.get("template") or unknown, language=f.get("language") or "?"
        )
        body = "\n".join([
            _("Meta's reason: {reason}").format(reason=f.get("reason") or _("none given")),
            _("Messages using this template are not sent while it is held. Fix the "
              "template in WhatsApp Manager (or create a new one), then sync templates."),
        ])  # fmt: skip
    elif kind == AlertKind.WEBHOOK_SIGNATURES:
        title = _("Webhook deliveries refused for a bad signature")
        body = "\n".join([
            _("Since {at}, deliveries signed with another secret are refused ({reason}).").format(
                at=_when(f.get("at")), reason=f.get("reason") or unknown
            ),
            _("Statuses and supplier replies are not being recorded. Check that "
              "WHATSAPP_APP_SECRET is the secret of the Meta app that sends the webhooks, "
              "then restart the webhook app: Meta retries refused deliveries for days."),
        ])  # fmt: skip
    else:
        title = one_line(kind)
        body = ""
    return AlertText(one_line(title), body)


def compose(kind: str, facts: Sequence[Mapping[str, Any]], window_minutes: int) -> AlertText:
    """The message for a recipient: one alert as it is, several as one digest."""
    if len(facts) == 1:
        return describe(kind, facts[0])
    parts = [describe(kind, item) for item in facts]
    title = ngettext("{count} alert: {kind}", "{count} alerts: {kind}", len(parts)).format(
        count=len(parts), kind=label(kind)
    )
    intro = _(
        "Several alerts of this kind came within {minutes} minutes; here they are together."
    ).format(minutes=window_minutes)
    blocks = [f"{i}. {part.title}\n{part.body}" for i, part in enumerate(parts, 1)]
    return AlertText(one_line(title), "\n\n".join([intro, *blocks]))


def footer() -> str:
    """The line at the end of every alert saying why the reader gets it."""
    return _("You get this because of your alert choices in wanotify (Settings > Alerts).")


def slack_escape(text: str) -> str:
    """`text` escaped by Slack's rules (`&`, `<`, `>`): shown as written, never a mention
    or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def chat_payload(text: AlertText) -> dict[str, str]:
    """The Slack-compatible JSON body for a chat webhook."""
    return {"text": slack_escape(f"{text.title}\n{text.body}")}
