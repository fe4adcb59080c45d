"""Running the sandbox: `run_sandbox` for the CLI, `SandboxServer` for tests and benchmarks.

`SandboxServer` starts uvicorn in a background thread on a free loopback port and waits
until the sandbox answers; its methods wrap the `/_sandbox/` controls.
"""

from __future__ import annotations

import gc
import logging
import socket
import threading
import time
from types import TracebackType
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

from core.sandbox.app import create_app
from core.sandbox.config import ConfigError, SandboxConfig, SandboxNumber
from core.settings import Settings, get_settings

log = logging.getLogger(__name__)


def _uvicorn_config(app: ASGIApp, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        loop="auto",
        http="auto",
        lifespan="on",
        timeout_keep_alive=30,
        backlog=4096,
        timeout_graceful_shutdown=2,
    )


def freeze_heap() -> None:
    """Collect once and freeze what is alive (imports, the app) in a process that will
    serve the sandbox for its whole life: full garbage collections then walk only what
    serving made, not every module object (50-100 ms pauses otherwise, which bunch the
    accept times the sandbox's throughput cap and the benchmarks count)."""
    gc.collect()
    gc.freeze()


def run_sandbox(settings: Settings | None = None) -> None:
    """Serve the sandbox on settings.sandbox_host:sandbox_port until interrupted (blocking)."""
    settings = settings or get_settings()
    config = with_registered_numbers(SandboxConfig.from_settings(settings), settings)
    log.warning(
        "Cloud API sandbox listening on http://%s:%s (nothing reaches Meta); webhooks go to %s",
        settings.sandbox_host,
        settings.sandbox_port,
        "the configured webhook URL" if config.webhook_url else "nowhere",
    )
    server = uvicorn.Server(
        _uvicorn_config(create_app(config), settings.sandbox_host, settings.sandbox_port)
    )
    freeze_heap()
    server.run()


def with_registered_numbers(config: SandboxConfig, settings: Settings) -> SandboxConfig:
    """`config` also playing every number stored in the database (`wanotify numbers add`,
    the demo's), so a restarted sandbox still knows them; the database unreadable (not
    migrated yet) or a number the sandbox cannot play is logged and left out."""
    from core.db import get_engine
    from core.numbers.registry import sending_numbers

    try:
        stored = [n for n in sending_numbers(get_engine(), settings) if not n.from_environment]
    except Exception as exc:  # a sandbox serves without the database all the same
        log.warning("sandbox: the stored numbers could not be read (%s)", type(exc).__name__)
        return config
    for number in stored:
        digits = "".join(c for c in (number.display_number or "") if c.isdigit())
        fields: dict[str, Any] = {
            "phone_number_id": number.phone_number_id,
            "waba_id": number.waba_id,
            "mps": number.max_mps,
            "access_token": (
                number.access_token.get_secret_value() if number.access_token else None
            ),
        }
        if digits:
            fields["display_phone_number"] = digits[:16]
        if number.display_name:
            fields["verified_name"] = number.display_name[:120]
        try:
            config = config.with_number(SandboxNumber.parse(fields))
        except ConfigError as exc:
            log.warning("sandbox: number %s left out: %s", number.phone_number_id, exc)
    return config


class BackgroundServer:
    """Any ASGI app under uvicorn in a daemon thread, on a free 127.0.0.1 port."""

    def __init__(self, app: ASGIApp, *, startup_timeout: float = 15.0) -> None:
        self.app = app
        self.startup_timeout = startup_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> str:
        """Bind, start serving, wait until uvicorn reports started; return the base URL."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self._server = uvicorn.Server(_uvicorn_config(self.app, "127.0.0.1", port))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"uvicorn-{port}"
        )
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the background server did not start")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for the thread (bounded)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None


class SandboxControls:
    """The `/_sandbox/` controls over HTTP, for a sandbox served at `self.url`.

    Shared by `SandboxServer` (a thread of this process) and `SandboxProcess` (a process
    of its own); `_client` is set while the sandbox runs.
    """

    url: str = ""
    _client: httpx.Client | None = None

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._client is None:
            raise RuntimeError("the sandbox server is not running")
        response = self._client.request(method, f"/_sandbox/{path}", **kwargs)
        if response.status_code >= 400:
            raise ValueError(f"sandbox {path}: {response.text}")
        return response.json()

    def stats(self, *, recipients: bool = True) -> dict[str, Any]:
        """`/_sandbox/stats`: counters, max sends in any 1 s window, webhook progress."""
        result: dict[str, Any] = self._call(
            "GET", "stats", params={"recipients": "1" if recipients else "0"}
        )
        return result

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change runtime settings (mps, latency_ms, webhook_url, time_scale, rates...)."""
        result: dict[str, Any] = self._call("POST", "config", json=changes)
        return result

    def reset(self, *, seed: int | None = None, keep_config: bool = False) -> None:
        """Forget every message and counter; restore the starting config unless kept."""
        body: dict[str, Any] = {"keep_config": keep_config}
        if seed is not None:
            body["seed"] = seed
        self._call("POST", "reset", json=body)

    def inject(
        self,
        code: int,
        *,
        count: int = 1,
        http_status: int | None = None,
        to: str | None = None,
        details: str | None = None,
        phone_number_id: str | None = None,
    ) -> dict[str, Any]:
        """Make the next `count` sends (to `to`, or anyone; from `phone_number_id`, or any
        number) fail with `code`."""
        body: dict[str, Any] = {"code": code, "count": count}
        for name, value in (
            ("http_status", http_status),
            ("to", to),
            ("details", details),
            ("phone_number_id", phone_number_id),
        ):
            if value is not None:
                body[name] = value
        result: dict[str, Any] = self._call("POST", "inject", json=body)
        return result

    def numbers(self) -> list[dict[str, Any]]:
        """Every business number the sandbox plays (no tokens), each with its `stats`."""
        result: dict[str, Any] = self._call("GET", "numbers")
        data: list[dict[str, Any]] = result["data"]
        return data

    def set_number(self, phone_number_id: str, **fields: Any) -> list[dict[str, Any]]:
        """Add a business number, or change one's fields (mps, quality_rating...)."""
        result: dict[str, Any] = self._call(
            "POST", "numbers", json={"phone_number_id": phone_number_id, **fields}
        )
        data: list[dict[str, Any]] = result["data"]
        return data

    def messages(self, **filters: Any) -> list[dict[str, Any]]:
        """Accepted messages (filters: to, biz_opaque, phone_number_id, offset, limit)."""
        result: dict[str, Any] = self._call("GET", "messages", params=filters)
        data: list[dict[str, Any]] = result["data"]
        return data

    def inbound(self, sender: str, **message: Any) -> dict[str, Any]:
        """A supplier message from `sender` (text=..., button=..., or button_index=...)."""
        result: dict[str, Any] = self._call("POST", "inbound", json={"from": sender, **message})
        return result

    def set_template_status(
        self, name: str, language: str, event: str, reason: str | None = None
    ) -> dict[str, Any]:
        """Change a template's status (posts `message_template_status_update`)."""
        body = {"name": name, "language": language, "event": event}
        if reason is not None:
            body["reason"] = reason
        result: dict[str, Any] = self._call("POST", "templates/status", json=body)
        return result

    def wait_for_webhooks(self, timeout: float = 30.0) -> dict[str, Any]:
        """Poll until no webhook is pending (or `timeout`); return the webhook counters."""
        deadline = time.monotonic() + timeout
        while True:
            webhooks: dict[str, Any] = self.stats(recipients=False)["webhooks"]
            if webhooks["pending"] == 0 or time.monotonic() > deadline:
                return webhooks
            time.sleep(0.05)


class SandboxServer(SandboxControls):
    """A sandbox on a free loopback port, for tests and benchmarks.

    `with SandboxServer(latency_ms=150, mps=1000) as sb:` then `sb.url` is the Graph base
    URL; `stats()`, `configure()`, `reset()`, `inject()`, `messages()`, `inbound()` and
    `set_template_status()` drive `/_sandbox/`. Keyword arguments are `SandboxConfig`
    fields; defaults are the fixed sandbox credentials and no webhook URL (tests say
    where webhooks go), independent of the environment.
    """

    def __init__(self, config: SandboxConfig | None = None, **overrides: Any) -> None:
        base = config or SandboxConfig()
        self.config = SandboxConfig(**{**_fields(base), **overrides})
        self._server = BackgroundServer(create_app(self.config))
        self._client = None
        self.url = ""

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> str:
        """Start serving and wait until `/_sandbox/health` answers; return the base URL."""
        self.url = self._server.start()
        self._client = httpx.Client(base_url=self.url, timeout=30.0)
        self._client.get("/_sandbox/health").raise_for_status()
        return self.url

    def stop(self) -> None:
        """Stop the server (pending webhooks are dropped)."""
        if self._client is not None:
            self._client.close()
            self._client = None
        self._server.stop()


def _fields(config: SandboxConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in config.__dataclass_fields__}


def sandbox_numbers(
    count: int, *, mps: int = 80, first_id: int = 200_000_000_000_001
) -> list[dict[str, Any]]:
    """`count` extra business numbers for `SandboxConfig(numbers=...)` (tests, benchmarks):
    ids counting up from `first_id`, display numbers +34 910 00 00 01..., each its own
    token `sandbox-token-<n>` and cap `mps`."""
    return [
        {
            "phone_number_id": str(first_id + n),
            "display_phone_number": f"349100{n + 1:05d}",
            "verified_name": f"Compras Demo {n + 2}",
            "access_token": f"sandbox-token-{n + 2}",
            "mps": mps,
        }
        for n in range(count)
    ]
