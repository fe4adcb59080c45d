"""An async client for Meta's WhatsApp Cloud API (and the sandbox that speaks its wire format).

It sends messages, lists templates and reads the phone number's health, turning every
failure into a `GraphError` the sender can classify: Meta's error bodies, bare HTTP
errors, HTML pages from a proxy, truncated JSON, timeouts and lost connections. It never
retries on its own: whether and when to retry is the sender's decision (error classes).

Transport: the send POST (the hot path, up to 1,000 a second) goes straight to an
aiohttp session with a persistent `TCPConnector(limit=max_connections)`, every
connection kept alive, and a body serialised once with orjson: httpx's request and
response objects on top of aiohttp cost more CPU than aiohttp itself (profiled: about
half of the sender's time per send). The rarer reads (templates, phone health) and any
injected httpx transport (unit tests) use httpx over aiohttp (`httpx-aiohttp`); httpx's
own pool stalls beyond ~50 concurrent connections on our hosts.

Transport failures are worded so the caller can tell whether the request may have
reached Meta: "could not connect: ..." (it did not leave) versus "timeout after ..." and
"connection lost: ..." (it may have been received and acted on).

The access token only ever travels in the Authorization header: it is not logged, not
put in URLs and not part of any error message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Self

import aiohttp
import httpx
import orjson
import yarl
from aiohttp.abc import AbstractStreamWriter
from httpx_aiohttp import HttpxAiohttpClient

from core.errors import GraphError
from core.settings import Settings, SettingsError, get_settings

log = logging.getLogger(__name__)

#: Idle connections are closed after this many seconds: below uvicorn's 5 s keep-alive,
#: so the client never reuses a connection the server is closing.
KEEPALIVE_EXPIRY = 4.0
TEMPLATE_FIELDS = (
    "id,name,language,status,category,components,parameter_format,quality_score,rejected_reason"
)
PHONE_FIELDS = (
    "display_phone_number,verified_name,quality_rating,throughput,status,"
    "whatsapp_business_manager_messaging_limit"
)
MAX_CALLBACK_DATA = 512
MAX_TEXT_BODY = 4096
#: Safety stop for template paging (250 templates per account, 100 per page).
MAX_TEMPLATE_PAGES = 200


@dataclass(frozen=True)
class SendResult:
    """Meta's acceptance of a message: its wamid and how Meta knows the recipient."""

    wamid: str
    wa_id: str | None
    input: str | None
    message_status: str  # "accepted" or "held_for_quality_assessment"
    raw: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class PhoneHealth:
    """The business phone number's standing: quality, throughput tier, messaging limit."""

    display_phone_number: str | None
    verified_name: str | None
    quality_rating: str | None  # GREEN, YELLOW, RED, UNKNOWN, NA
    throughput_level: str | None  # STANDARD, HIGH
    status: str | None  # CONNECTED, FLAGGED, ...
    messaging_limit: str | None  # e.g. TIER_250, TIER_UNLIMITED
    raw: dict[str, Any] = field(repr=False)


def template_message(
    to: str,
    name: str,
    language: str,
    components: list[dict[str, Any]],
    *,
    biz_opaque_callback_data: str | None = None,
) -> dict[str, Any]:
    """The Cloud API body of a template message (components omitted when empty)."""
    template: dict[str, Any] = {"name": name, "language": {"code": language}}
    if components:
        template["components"] = components
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": template,
    }
    return _with_callback(body, biz_opaque_callback_data)


def text_message(
    to: str, body: str, *, preview_url: bool = False, biz_opaque_callback_data: str | None = None
) -> dict[str, Any]:
    """The Cloud API body of a free-form text (only inside the 24-hour service window)."""
    if not isinstance(body, str) or not body.strip():
        raise ValueError("a text message needs a non-empty body")
    if len(body) > MAX_TEXT_BODY:
        raise ValueError(f"a text message body is at most {MAX_TEXT_BODY} characters")
    message: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"body": body, "preview_url": preview_url},
    }
    return _with_callback(message, biz_opaque_callback_data)


def _with_callback(body: dict[str, Any], data: str | None) -> dict[str, Any]:
    if data is not None:
        if len(data) > MAX_CALLBACK_DATA:
            raise ValueError(f"biz_opaque_callback_data is at most {MAX_CALLBACK_DATA} chars")
        body["biz_opaque_callback_data"] = data
    return body


class CloudApiClient:
    """One connection pool to the Graph API for the settings' phone number and account.

    Use as `async with CloudApiClient() as client:` (or call `aclose()`); one client per
    process is enough and is safe to share between tasks of one event loop.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        max_connections: int = 1000,
        timeout: float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        phone_number_id: str | None = None,
        access_token: str | None = None,
    ) -> None:
        """`phone_number_id` and `access_token` name another number than the settings'
        (each sending number has its own client: core.sender.worker)."""
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._settings = settings or get_settings()
        self._phone_number_id = phone_number_id or self._settings.phone_number_id
        token = access_token or self._settings.access_token
        self._timeout = float(timeout or self._settings.whatsapp_request_timeout)
        self._version = self._settings.whatsapp_api_version
        limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=KEEPALIVE_EXPIRY,
        )
        # HttpxAiohttpClient builds aiohttp transports (with these limits) for the
        # direct route and for any proxy from the environment alike.
        self._http = HttpxAiohttpClient(
            base_url=self._settings.api_base_url,
            transport=transport,
            limits=limits,
            timeout=httpx.Timeout(self._timeout),
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
            },
            follow_redirects=False,
            trust_env=transport is None,  # an injected transport is never bypassed by proxies
        )

        # The hot path's URL, parsed once: httpx would parse and merge it on every send
        # (a measurable share of the sender's CPU at 1,000 messages a second).
        self._messages_url = httpx.URL(
            f"{self._settings.api_base_url}/{self._version}/"
            f"{self._phone_number_id}/messages"
        )
        self._direct = transport is None  # sends over aiohttp itself, not through httpx
        self._max_connections = max_connections
        self._send_url = yarl.URL(str(self._messages_url), encoded=True)
        self._send_headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        self._session: aiohttp.ClientSession | None = None
        self._send_proxy = _env_proxy(self._send_url)

    def __repr__(self) -> str:
        return f"CloudApiClient(base_url={self._settings.api_base_url!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self._http.aclose()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _send_session(self) -> aiohttp.ClientSession:
        """The send path's aiohttp session, made on first use (it needs a running loop)."""
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,
                keepalive_timeout=KEEPALIVE_EXPIRY,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None),  # asyncio.timeout bounds it all
                # The environment's proxy is read once (`_send_proxy`): aiohttp's
                # trust_env would re-read the environment and ~/.netrc on every send.
                trust_env=False,
            )
        return self._session

    async def send_message(
        self, payload: dict[str, Any], *, on_written: Callable[[], None] | None = None
    ) -> SendResult:
        """POST a complete Cloud API message body; Meta's acceptance or a GraphError.

        `on_written` is called once, just before the request's bytes are written to the
        connection (after any wait for a pooled or new connection): the dispatcher's
        limiter dates the send then. Not called when the request never got that far
        (no connection); through an injected httpx transport, just before the request.
        """
        if not self._direct:
            if on_written is not None:
                on_written()
            body = await self._request("POST", self._messages_url, json_body=payload)
            return _send_result(body)
        body_bytes = _dump(payload)
        data = body_bytes if on_written is None else _WriteNotifyingBytes(body_bytes, on_written)
        session = self._send_session()
        try:
            async with asyncio.timeout(self._timeout):  # the whole exchange, body included
                async with session.post(
                    self._send_url,
                    data=data,
                    headers=self._send_headers,
                    allow_redirects=False,
                    proxy=self._send_proxy,
                ) as response:
                    status, content = response.status, await response.read()
        except TimeoutError:  # before OSError: a subclass
            error = GraphError.transport(f"timeout after {self._timeout:g}s")
        except (aiohttp.ClientError, OSError) as exc:
            error = _transport_error(exc, self._timeout)
        else:
            return _send_result(_answer(status, content))
        log.info("POST %s failed: %s", self._messages_url.path, error.message)
        raise error

    async def send_template(
        self,
        to: str,
        name: str,
        language: str,
        components: list[dict[str, Any]],
        *,
        biz_opaque_callback_data: str | None = None,
    ) -> SendResult:
        """Send template `name` in `language` to `to` (E.164 digits) with its components."""
        return await self.send_message(
            template_message(
                to, name, language, components, biz_opaque_callback_data=biz_opaque_callback_data
            )
        )

    async def send_text(
        self,
        to: str,
        body: str,
        *,
        preview_url: bool = False,
        biz_opaque_callback_data: str | None = None,
    ) -> SendResult:
        """Send a free-form text (Meta refuses it with 131047 outside the 24-hour window)."""
        return await self.send_message(
            text_message(
                to, body, preview_url=preview_url, biz_opaque_callback_data=biz_opaque_callback_data
            )
        )

    async def list_templates(
        self, *, page_size: int = 100, fields: str = TEMPLATE_FIELDS, waba_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Every template of the business account (`waba_id`, else the settings'),
        following the cursor to the last page."""
        waba = waba_id or self._settings.business_account_id
        if not waba:
            raise SettingsError("WHATSAPP_BUSINESS_ACCOUNT_ID is not set: templates live there")
        path = f"/{self._version}/{waba}/message_templates"
        params = {"fields": fields, "limit": str(page_size)}
        templates: list[dict[str, Any]] = []
        seen_cursors: set[str] = set()
        for _ in range(MAX_TEMPLATE_PAGES):
            body = await self._request("GET", path, params=params)
            data = body.get("data")
            if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
                raise _shape_error("the template list has no 'data' list", body)
            templates.extend(data)
            after = _next_cursor(body)
            if after is None:
                return templates
            if after in seen_cursors:
                raise _shape_error("the template list repeats a page cursor", body)
            seen_cursors.add(after)
            params = {**params, "after": after}
        raise _shape_error(f"the template list has more than {MAX_TEMPLATE_PAGES} pages", {})

    async def create_template(
        self, template: dict[str, Any], *, waba_id: str | None = None
    ) -> dict[str, Any]:
        """Submit a new template (Meta's create JSON) to the business account for review.

        Meta answers `{"id", "status", "category"}`, status PENDING (or already APPROVED
        or REJECTED); a refusal is a GraphError with Meta's `error_user_msg` in
        `user_message`. `waba_id` defaults to the settings' business account.
        """
        waba = waba_id or self._settings.business_account_id
        if not waba:
            raise SettingsError("WHATSAPP_BUSINESS_ACCOUNT_ID is not set: templates live there")
        path = f"/{self._version}/{waba}/message_templates"
        body = await self._request("POST", path, json_body=template)
        if not isinstance(body.get("id"), str | int) or not body.get("id"):
            raise _shape_error("the template was accepted without an id", body)
        return body

    async def phone_health(self) -> PhoneHealth:
        """Quality rating, throughput level, status and messaging limit of the phone number."""
        path = f"/{self._version}/{self._phone_number_id}"
        body = await self._request("GET", path, params={"fields": PHONE_FIELDS})
        throughput = body.get("throughput")
        limit = body.get("whatsapp_business_manager_messaging_limit")
        if isinstance(limit, dict):
            limit = limit.get("current_limit") or limit.get("tier")
        return PhoneHealth(
            display_phone_number=_text(body.get("display_phone_number")),
            verified_name=_text(body.get("verified_name")),
            quality_rating=_text(body.get("quality_rating")),
            throughput_level=_text(throughput.get("level"))
            if isinstance(throughput, dict)
            else None,
            status=_text(body.get("status")),
            messaging_limit=_text(limit) or _text(body.get("messaging_limit_tier")),
            raw=body,
        )

    async def _request(
        self,
        method: str,
        path: str | httpx.URL,
        *,
        json_body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One HTTP exchange; a JSON object for 2xx, else a GraphError (never a raw exception)."""
        try:
            async with asyncio.timeout(self._timeout):  # the whole exchange, body included
                response = await self._http.request(method, path, json=json_body, params=params)
        except TimeoutError:  # (also aiohttp's own timeouts, and before OSError: a subclass)
            error = GraphError.transport(f"timeout after {self._timeout:g}s")
        except (httpx.TransportError, aiohttp.ClientError, OSError) as exc:
            error = _transport_error(exc, self._timeout)
        else:
            return _answer(response.status_code, response.content)
        log.info("%s %s failed: %s", method, path, error.message)
        raise error


class _WriteNotifyingBytes(aiohttp.BytesPayload):
    """A JSON request body that calls `on_written` once, as aiohttp starts writing it
    (headers and body go out together, after the connection is ready)."""

    def __init__(self, value: bytes, on_written: Callable[[], None]) -> None:
        super().__init__(value, content_type="application/json")
        self._on_written: Callable[[], None] | None = on_written

    def _notify(self) -> None:
        hook, self._on_written = self._on_written, None
        if hook is not None:
            hook()

    async def write(self, writer: AbstractStreamWriter) -> None:
        """Notify, then write the whole body."""
        self._notify()
        await super().write(writer)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        """Notify, then write the body (aiohttp's path for a known length)."""
        self._notify()
        await super().write_with_length(writer, content_length)


def _env_proxy(url: yarl.URL) -> str | None:
    """The proxy the environment (HTTP(S)_PROXY, NO_PROXY) sets for `url`, as httpx
    would use it; None for a direct connection."""
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if url.host and bypass(url.host):
        return None
    return urllib.request.getproxies_environment().get(url.scheme) or None


def _dump(payload: dict[str, Any]) -> bytes:
    """The JSON body, serialised by orjson (stdlib json for what orjson refuses, e.g.
    integers beyond 64 bits, so a body httpx would have sent is still sent)."""
    try:
        return orjson.dumps(payload)
    except TypeError:  # orjson.JSONEncodeError is a TypeError, as json's own failures are
        return json.dumps(payload).encode()


def _answer(status: int, content: bytes) -> dict[str, Any]:
    """The JSON object of a 2xx answer; a GraphError for anything else."""
    body = _json_or_none(content)
    if not 200 <= status < 300:
        error = GraphError.from_response(status, body)
        if body is None and content:
            error = replace(error, details=_snippet(content))
        raise error
    if not isinstance(body, dict):
        raise GraphError(
            code=None,
            message=f"Meta answered HTTP {status} with a body that is not a JSON object",
            http_status=status,
            details=_snippet(content),
        )
    return body


def _send_result(body: dict[str, Any]) -> SendResult:
    messages = body.get("messages")
    first = messages[0] if isinstance(messages, list) and messages else None
    wamid = first.get("id") if isinstance(first, dict) else None
    if not isinstance(wamid, str) or not wamid:
        raise _shape_error("the send was answered without a message id", body)
    contacts = body.get("contacts")
    contact = contacts[0] if isinstance(contacts, list) and contacts else {}
    if not isinstance(contact, dict):
        contact = {}
    assert isinstance(first, dict)
    return SendResult(
        wamid=wamid,
        wa_id=_text(contact.get("wa_id")),
        input=_text(contact.get("input")),
        message_status=_text(first.get("message_status")) or "accepted",
        raw=body,
    )


def _next_cursor(body: dict[str, Any]) -> str | None:
    """The `after` cursor of the next page; None on the last page (no `paging.next`)."""
    paging = body.get("paging")
    if not isinstance(paging, dict) or not paging.get("next"):
        return None
    cursors = paging.get("cursors")
    after = cursors.get("after") if isinstance(cursors, dict) else None
    if not isinstance(after, str) or not after:
        raise _shape_error("the template list has a next page but no 'after' cursor", body)
    return after


def _transport_error(exc: BaseException, timeout: float) -> GraphError:
    """Word a transport failure by whether the request may have reached the server.

    httpx-aiohttp maps aiohttp's errors loosely (a server hanging up becomes a
    ConnectTimeout), so the original aiohttp error, kept as the cause, decides.
    """
    cause = exc.__cause__
    never_sent = (
        aiohttp.ClientConnectorError,
        aiohttp.ConnectionTimeoutError,
        ConnectionRefusedError,
    )
    if isinstance(cause or exc, never_sent) or (
        isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout) and cause is None
    ):
        return GraphError.transport(f"could not connect: {cause or exc}")
    if isinstance(exc, httpx.TimeoutException) and (
        cause is None or isinstance(cause, TimeoutError)
    ):
        return GraphError.transport(f"timeout after {timeout:g}s")
    return GraphError.transport(f"connection lost: {type(cause or exc).__name__}: {cause or exc}")


def _shape_error(problem: str, body: dict[str, Any]) -> GraphError:
    """A 2xx answer that is not Meta's shape: no code, classed permanent (not retried,
    as the request may have been acted on)."""
    return GraphError(
        code=None,
        message=f"Unexpected answer from Meta: {problem}",
        http_status=200,
        details=_snippet(json.dumps(body, default=str).encode()),
    )


def _json_or_none(content: bytes) -> Any:
    if not content:
        return None
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        pass
    try:  # what orjson is stricter about (NaN, big integers) json still reads
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None


def _snippet(content: bytes, limit: int = 200) -> str:
    text = " ".join(content.decode("utf-8", "replace").split())
    return text if len(text) <= limit else text[:limit] + "…"


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)
