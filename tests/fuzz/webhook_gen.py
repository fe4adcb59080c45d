"""Generated webhook POSTs: valid signed statuses, signed mutations, and forgeries.

- `valid_status`: correctly signed bodies of 1-4 statuses for *tracked* messages (outbox
  rows the test created); `TrackedMessage.expected()` says where each must end.
- `mutated_signed`: the shared samples, status bodies for *target* messages, inbound
  replies and template updates, mutated (`tests.fuzz.mutate`) and correctly signed: any
  of 200/400, never a 5xx, and the applier must not choke on them.
- refusals, which must write nothing: unsigned, signed with another secret (the
  sandbox's too: the app runs a complete live configuration), malformed signatures, a
  signature of another body, a signed body cut short, wrong content types, oversize,
  and a client that hangs up mid-body. Their bodies are the same valid and mutated
  bodies, so a forged `read` for a tracked message is among them.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.settings import SANDBOX_APP_SECRET
from core.webhooks.signature import sign
from tests.fuzz.cases import JSON, WEBHOOK_PATH, Case
from tests.fuzz.mutate import mutate

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples" / "webhooks"
T0 = 1_763_990_000
RECIPIENT = "34612345678"
STAGES = ("sent", "delivered", "read", "failed")
UTILITY = {"billable": True, "pricing_model": "PMP", "category": "utility", "type": "regular"}
UNDELIVERABLE = [
    {
        "code": 131026,
        "title": "Message undeliverable",
        "message": "Message undeliverable",
        "error_data": {"details": "Receiver is incapable of receiving this message."},
    }
]
WRONG_CONTENT_TYPES = (
    b"text/plain",
    b"application/x-www-form-urlencoded",
    b"multipart/form-data; boundary=xyz",
    b"application/jsonx",
    b"application/json-patch+json",
    b"json",
    b"application/xml",
)


@dataclass
class TrackedMessage:
    """An outbox row the fuzz sends valid statuses for, and the events it was sent."""

    id: str
    wamid: str
    events: set[tuple[str, int]] = field(default_factory=set)

    def expected(self) -> tuple[str, dict[str, int | None]]:
        """The status and stage times (unix) the set of events implies (DESIGN.md)."""
        times: dict[str, list[int]] = {stage: [] for stage in STAGES}
        for stage, ts in self.events:
            times[stage].append(ts)
        read = times["read"]
        delivered = times["delivered"] + read
        sent = times["sent"] + delivered
        stages = {
            "sent_at": min(sent, default=None),
            "delivered_at": min(delivered, default=None),
            "read_at": min(read, default=None),
            "failed_at": min(times["failed"], default=None),
        }
        if read:
            return "read", stages
        if delivered:
            return "delivered", stages
        if times["failed"]:
            return "failed", stages
        return ("sent" if sent else "accepted"), stages


def sample_docs() -> list[Any]:
    """The shared sample bodies, parsed."""
    return [json.loads(p.read_bytes()) for p in sorted(SAMPLES.glob("*.json"))]


def envelope(values: list[dict[str, Any]], field_name: str = "messages") -> dict[str, Any]:
    """A webhook document: one entry, one change per value."""
    changes = [{"field": field_name, "value": v} for v in values]
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": changes}],
    }


def _value(**parts: Any) -> dict[str, Any]:
    metadata = {"display_phone_number": "34910000000", "phone_number_id": "106540352242922"}
    return {"messaging_product": "whatsapp", "metadata": metadata, **parts}


def status_item(wamid: str, stage: str, ts: int, rng: random.Random) -> dict[str, Any]:
    """One status as Meta shapes it (errors on a failure, pricing sometimes)."""
    item: dict[str, Any] = {
        "id": wamid,
        "status": stage,
        "timestamp": str(ts),
        "recipient_id": RECIPIENT,
    }
    if stage == "failed":
        item["errors"] = copy.deepcopy(UNDELIVERABLE)
    elif rng.random() < 0.5:
        item["pricing"] = dict(UTILITY)
    return item


class WebhookGenerator:
    """Seeded webhook cases for tracked (valid) and target (mutated) messages."""

    def __init__(
        self,
        rng: random.Random,
        secret: str,
        tracked: list[TrackedMessage],
        targets: list[str],
    ) -> None:
        self.rng = rng
        self.secret = secret
        self.tracked = tracked
        self.targets = targets  # wamids of messages only mutated statuses are sent for
        self.samples = sample_docs()
        self._sent_items: list[tuple[TrackedMessage, dict[str, Any]]] = []

    # --- bodies -------------------------------------------------------------------------

    def valid_doc(self, record: bool) -> dict[str, Any]:
        """A body of 1-4 valid statuses for tracked messages (sometimes an exact repeat).

        `record`: the statuses count toward the messages' expected state (signed cases).
        """
        items: list[dict[str, Any]] = []
        for _ in range(self.rng.choice((1, 1, 2, 3, 4))):
            if record and self._sent_items and self.rng.random() < 0.1:
                items.append(copy.deepcopy(self.rng.choice(self._sent_items)[1]))
                continue
            message = self.rng.choice(self.tracked)
            stage = self.rng.choice(STAGES)
            ts = T0 + self.rng.randrange(86_400)
            item = status_item(message.wamid, stage, ts, self.rng)
            if record:
                message.events.add((stage, ts))
                self._sent_items.append((message, item))
            items.append(item)
        return envelope([_value(statuses=items)])

    def target_doc(self) -> Any:
        """A base for mutation: a sample, target statuses, an inbound reply or a template update."""
        pick = self.rng.randrange(4)
        if pick == 0:
            return copy.deepcopy(self.rng.choice(self.samples))
        if pick == 1:
            items = [
                status_item(
                    self.rng.choice(self.targets),
                    self.rng.choice(STAGES),
                    T0 + self.rng.randrange(86_400),
                    self.rng,
                )
                for _ in range(self.rng.choice((1, 2, 3)))
            ]
            return envelope([_value(statuses=items)])
        if pick == 2:
            sender = f"3461{self.rng.randrange(10**7):07d}"
            message: dict[str, Any] = {
                "from": sender,
                "id": f"wamid.FZIN{self.rng.getrandbits(64):016x}",
                "timestamp": str(T0 + self.rng.randrange(86_400)),
            }
            if self.rng.random() < 0.5:
                message.update(type="text", text={"body": "Recibido, gracias"})
            else:
                message.update(
                    type="button", button={"payload": "ack:PO-FUZZ", "text": "Confirmar"}
                )
                message["context"] = {"from": "34910000000", "id": self.rng.choice(self.targets)}
            contacts = [{"profile": {"name": "Proveedor Fuzz"}, "wa_id": sender}]
            return envelope([_value(contacts=contacts, messages=[message])])
        update = {
            "event": self.rng.choice(("APPROVED", "REJECTED", "PAUSED", "DISABLED")),
            "message_template_id": 900_000 + self.rng.randrange(1000),
            "message_template_name": f"fuzz_tpl_{self.rng.randrange(50)}",
            "message_template_language": "es",
            "reason": "NONE",
        }
        return envelope([update], "message_template_status_update")

    def _body(self, record: bool) -> bytes:
        """A valid (not recorded) or mutated body, for a refusal."""
        if self.rng.random() < 0.5:
            return json.dumps(self.valid_doc(record)).encode()
        return mutate(self.target_doc(), self.rng)[0]

    # --- cases --------------------------------------------------------------------------

    def _case(
        self,
        kind: str,
        body: bytes,
        signature: str | None,
        allowed: set[int],
        content_type: tuple[bytes, bytes] = JSON,
        cut_at: int | None = None,
    ) -> Case:
        headers = [content_type] if content_type[1] else []
        if signature is not None:
            headers.append((b"x-hub-signature-256", signature.encode("latin-1")))
        return Case(WEBHOOK_PATH, kind, body, tuple(headers), frozenset(allowed), cut_at)

    def accepted_case(self) -> Case:
        """A correctly signed JSON POST: a valid status body, a sample, or a mutation."""
        roll = self.rng.random()
        if roll < 0.45:
            body = json.dumps(self.valid_doc(record=True)).encode()
            return self._case("valid_status", body, sign(self.secret, body), {200})
        if roll < 0.5:
            body = json.dumps(self.rng.choice(self.samples)).encode()
            return self._case("sample", body, sign(self.secret, body), {200})
        body, _ops = mutate(self.target_doc(), self.rng)
        return self._case("mutated_signed", body, sign(self.secret, body), {200, 400})

    def refused_case(self) -> Case:
        """A POST that must be refused and leave no row: forged, cut, mistyped or too big."""
        kind = self.rng.choice(
            ("unsigned", "wrong_secret", "sandbox_secret", "malformed_signature", "other_body",
             "cut_after_signing", "wrong_content_type", "hang_up", "unsigned", "wrong_secret")
        )  # fmt: skip
        if self.rng.random() < 0.003:
            kind = "oversize"
        body = self._body(record=False)
        if kind == "unsigned":
            return self._case(kind, body, None, {401})
        if kind == "wrong_secret":
            secret = self.rng.choice(
                ("", "guess", self.secret + "x", self.secret[:-1], self.secret.upper())
            )
            return self._case(kind, body, sign(secret, body), {401})
        if kind == "sandbox_secret":
            return self._case(kind, body, sign(SANDBOX_APP_SECRET, body), {401})
        if kind == "malformed_signature":
            good = sign(self.secret, body)
            bad = self.rng.choice(
                ("", "sha256=", "sha1=" + good[7:47], good[:-1], good + "0", "sha256=" + "z" * 64,
                 good[7:], "sha256 =" + good[7:], "sha256=" + good[7:] + " extra")
            )  # fmt: skip
            return self._case(kind, body, bad, {401})
        if kind == "other_body":
            other = json.dumps(self.valid_doc(record=False)).encode()
            return self._case(kind, body, sign(self.secret, other), {401})
        if kind == "cut_after_signing":
            cut = body[: self.rng.randrange(len(body))] if len(body) > 1 else b""
            return self._case(kind, cut, sign(self.secret, body), {401})
        if kind == "wrong_content_type":
            content_type = (b"content-type", self.rng.choice((*WRONG_CONTENT_TYPES, b"")))
            return self._case(kind, body, sign(self.secret, body), {415}, content_type)
        if kind == "oversize":
            doc = envelope(
                [_value(statuses=[status_item(self.tracked[0].wamid, "read", T0, self.rng)])]
            )
            doc["pad"] = "x" * (4 * 1024 * 1024 + 1)
            big = json.dumps(doc).encode()
            return self._case(kind, big, sign(self.secret, big), {413})
        # hang_up: a correctly signed body, the client gone before its last byte
        signature = sign(self.secret, body)
        return self._case(
            kind, body, signature, set(), cut_at=self.rng.randrange(max(len(body), 1))
        )
