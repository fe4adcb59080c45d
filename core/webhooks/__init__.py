"""Meta's webhooks: verified, journalled, then applied to messages, replies and templates.

The flow, one module per step:
`signature` (HMAC check) -> `parse` (lenient, typed events) -> `journal` (durable group
commit; the 200 goes out after it; on SQLite into the `inbox` file) -> `apply` (batches:
`statuses` via `fold`, `inbound`, `templates`) -> `health` and `metrics`. `runtime` runs
the steps of one webhook process, `applier` is the applier's schedule (run in a process
of its own: `applier_process`), and `server.run_webhook_app` serves the Starlette
layer (`app`, served as the top-level `webhook_app:app`) with uvicorn.
"""

from core.webhooks.apply import apply_next_batch, retry_failed_receipts, sweep_held
from core.webhooks.health import WebhookHealth, read_health
from core.webhooks.parse import InvalidBody, ParsedPayload, decode_body, parse_payload
from core.webhooks.signature import SignatureCheck, check_signature, sign

__all__ = [
    "InvalidBody",
    "ParsedPayload",
    "SignatureCheck",
    "WebhookHealth",
    "apply_next_batch",
    "check_signature",
    "decode_body",
    "parse_payload",
    "read_health",
    "retry_failed_receipts",
    "sign",
    "sweep_held",
]
