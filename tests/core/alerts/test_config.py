"""Alert settings from the environment: coherent or one line naming what is missing,
secrets never in the message."""

from __future__ import annotations

import pytest

from core.alerts.config import AlertConfigError, load_alert_settings


@pytest.fixture(autouse=True)
def _no_alert_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("ALERTS_"):
            monkeypatch.delenv(name)


def test_nothing_set_means_no_email_and_no_chat() -> None:
    settings = load_alert_settings()
    assert not settings.email_enabled and settings.chat_target("acme") is None


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"ALERTS_SMTP_HOST": "smtp.acme.test"}, "missing ALERTS_SMTP_FROM"),
        ({"ALERTS_SMTP_FROM": "alerts@acme.test"}, "missing ALERTS_SMTP_HOST"),
        ({"ALERTS_SMTP_PORT": "587"}, "missing ALERTS_SMTP_HOST, ALERTS_SMTP_FROM"),
        (
            {"ALERTS_SMTP_HOST": "h", "ALERTS_SMTP_FROM": "a@b", "ALERTS_SMTP_USERNAME": "u"},
            "missing ALERTS_SMTP_PASSWORD",
        ),
        (
            {"ALERTS_SMTP_HOST": "h", "ALERTS_SMTP_FROM": "a@b", "ALERTS_SMTP_PASSWORD": "pw-1"},
            "missing ALERTS_SMTP_USERNAME",
        ),
        (
            {"ALERTS_SMTP_HOST": "h", "ALERTS_SMTP_FROM": "a@b", "ALERTS_SMTP_USERNAME": "u",
             "ALERTS_SMTP_PASSWORD": "pw-1", "ALERTS_SMTP_TLS": "none"},
            "password in clear",
        ),
        ({"ALERTS_SMTP_TLS": "ssl3"}, "ALERTS_SMTP_TLS: must be starttls, tls or none"),
        ({"ALERTS_SMTP_HOST": "h", "ALERTS_SMTP_FROM": "nobody"}, "must be an e-mail address"),
        ({"ALERTS_CHAT_WEBHOOK_URL": "ftp://pw-1@x"}, "must be an http(s):// URL"),
        ({"ALERTS_CHAT_WEBHOOK_URLS": '{"acme": "javascript:pw-1"}'}, "for tenant acme"),
        ({"ALERTS_CHAT_WEBHOOK_URLS": "not json"}, "ALERTS_CHAT_WEBHOOK_URLS"),
    ],
)  # fmt: skip
def test_a_half_made_configuration_fails_closed_in_one_line(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], named: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(AlertConfigError) as caught:
        load_alert_settings()
    message = str(caught.value)
    assert named in message and "\n" not in message
    assert "pw-1" not in message  # a password or a secret URL is never repeated


def test_a_complete_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTS_SMTP_HOST", "smtp.acme.test")
    monkeypatch.setenv("ALERTS_SMTP_FROM", "alerts@acme.test")
    monkeypatch.setenv("ALERTS_SMTP_TLS", "TLS")
    monkeypatch.setenv("ALERTS_CHAT_WEBHOOK_URL", "https://hooks.example/global")
    monkeypatch.setenv("ALERTS_CHAT_WEBHOOK_URLS", '{"acme": "https://hooks.example/acme"}')
    settings = load_alert_settings()
    assert settings.email_enabled and settings.port == 465
    assert settings.chat_target("acme") == "tenant:acme"
    assert settings.chat_target("globex") == "global"
    assert settings.url_for_target("tenant:acme") == "https://hooks.example/acme"
    assert "hooks.example" not in repr(settings)  # secrets stay masked in logs
