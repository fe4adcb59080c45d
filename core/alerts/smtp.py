"""Sending an alert e-mail through the configured SMTP server (STARTTLS, TLS or none).

Plain text only, UTF-8, one recipient per message (no address ever sees another's).
Certificates are checked (the system's CAs, or `ALERTS_SMTP_CA_FILE`); STARTTLS is
required when configured, never silently skipped. Errors are raised as `DeliveryError`
with words that never hold the password.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from core.alerts.config import AlertSettings
from core.alerts.render import AlertText, footer, one_line


class DeliveryError(Exception):
    """An alert could not be delivered now; the message is safe to store and show.
    `whole_channel` is False when only this recipient is the problem (a bad address, a
    refused recipient): the channel's other deliveries of the pass go ahead."""

    def __init__(self, message: str, *, whole_channel: bool = True) -> None:
        super().__init__(message)
        self.whole_channel = whole_channel


def build_message(settings: AlertSettings, to: str, text: AlertText) -> EmailMessage:
    """The e-mail for one recipient: `[wanotify]` subject, plain-text body and footer."""
    message = EmailMessage()
    message["From"] = settings.smtp_from or ""
    message["To"] = to
    message["Subject"] = one_line(f"[wanotify] {text.title}")
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=(settings.smtp_from or "@wanotify").split("@")[-1])
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(f"{text.body}\n\n-- \n{footer()}\n", charset="utf-8")
    return message


def _context(settings: AlertSettings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.smtp_ca_file or None)


def send_mail(settings: AlertSettings, to: str, text: AlertText) -> None:
    """Deliver one alert mail to `to`; raise DeliveryError if the server did not take it."""
    if not settings.smtp_host:
        raise DeliveryError("e-mail is not configured (ALERTS_SMTP_HOST)")
    try:
        message = build_message(settings, to, text)
    except (ValueError, TypeError) as exc:  # e.g. a line break in the address
        raise DeliveryError(
            f"cannot write a mail to {one_line(to, 100)!r}: {exc}", whole_channel=False
        ) from None
    host, port, timeout = settings.smtp_host, settings.port, settings.smtp_timeout
    try:
        if settings.smtp_tls == "tls":
            server: smtplib.SMTP = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=_context(settings)
            )
        else:
            server = smtplib.SMTP(host, port, timeout=timeout)
        with server:
            server.ehlo()
            if settings.smtp_tls == "starttls":
                if not server.has_extn("starttls"):
                    raise DeliveryError(f"{host}:{port} does not offer STARTTLS")
                server.starttls(context=_context(settings))
                server.ehlo()
            if settings.smtp_username and settings.smtp_password is not None:
                server.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            refused = server.send_message(message)
            if refused:
                raise DeliveryError(f"the server refused the recipient {to}", whole_channel=False)
    except DeliveryError:
        raise
    except smtplib.SMTPRecipientsRefused:
        raise DeliveryError(f"the server refused the recipient {to}", whole_channel=False) from None
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(f"{host}:{port} refused the login (SMTP {exc.smtp_code})") from None
    except smtplib.SMTPResponseException as exc:
        said = (
            exc.smtp_error.decode("utf-8", "replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        raise DeliveryError(
            f"{host}:{port} answered {exc.smtp_code} {one_line(said, 200)}"
        ) from None
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise DeliveryError(f"{host}:{port}: {type(exc).__name__}: {one_line(exc, 200)}") from None
