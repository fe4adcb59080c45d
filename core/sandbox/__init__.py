"""A local stand-in for Meta's WhatsApp Business Cloud API (v24+ wire format).

It accepts sends at `POST /{version}/{phone_number_id}/messages` with Meta's validation,
error bodies, throughput cap (130429), pair limit (131056), 24 h window (131047) and a
configurable latency; lists templates with cursor paging; answers phone-number health;
and posts signed status webhooks (sent/delivered/read/failed, with Meta's duplicates,
reordering and batching) and supplier replies back to the configured webhook URL;
accepts template submissions (`POST /{version}/{waba_id}/message_templates`, refused in
Meta's shape when malformed, reviewed after `template_review_s`: see
`core.sandbox.template_create`).

Run it with `run_sandbox(settings)` (CLI), `SandboxServer(**config)` (tests: a thread)
or `core.sandbox.process.SandboxProcess(**config)` (benchmarks: a process of its own);
the ASGI factory is `create_app(config)`. Controls live under `/_sandbox/`: `stats`,
`config`, `inject`, `reset`, `messages`, `inbound`, `templates/status`, `health`.

Magic recipients: the last four digits of `to` choose the outcome (any country code;
+34 600 00 0000 style numbers are the usual choice):

| suffix | outcome |
|--------|---------|
| 0000 | accepted, then a `failed` status webhook 131026 (undeliverable), no `sent` |
| 0047 | free-form (text...) messages always get 131047 (window closed); templates OK |
| 0099 | accepted, and no status webhook ever comes (stuck in `accepted`) |
| 0132 | accepted as `held_for_quality_assessment`, then `failed` 132015 (template paused) |
| 0190 | HTTP 401, code 190 (access token expired): a pause-class error |
| 0200 | delivered and read, then the supplier taps the first quick-reply button |
| 0201 | delivered and read, then the supplier taps the second quick-reply button |
| 0202 | delivered and read, then the supplier answers with a text message |
| 0368 | HTTP 400, code 368 (temporarily blocked for policy violations) |
| 0429 | the first send to the number gets 130429 (rate limit hit); later sends normal |
| 0500 | every send gets HTTP 500, code 131000 (something went wrong) |
| 0501 | the first send gets HTTP 500, code 131000; later sends normal |

Also: `POST /_sandbox/inject {"code": X, "http_status": Y, "count": N, "to": "+34..."}`
makes the next N valid sends (to that recipient, or to anyone) fail with code X.

wa_id rewriting (see `core.sandbox.numbers`): Mexico `52`+10 digits gives wa_id
`521`+10 digits; Argentina `54`+10 digits gives `549`+10; Brazil mobiles gain the ninth
digit for area codes 11-28 and lose it for 31-99.
"""

from core.sandbox.app import create_app
from core.sandbox.config import ConfigError, SandboxConfig
from core.sandbox.server import BackgroundServer, SandboxServer, run_sandbox

__all__ = [
    "BackgroundServer",
    "ConfigError",
    "SandboxConfig",
    "SandboxServer",
    "create_app",
    "run_sandbox",
]
