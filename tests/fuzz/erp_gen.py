"""Generated `POST /api/v1/po-events`: valid events, mutated ones, and every wrong key.

- `valid`: the README's event shape with the right key, a fresh PO number each, for a
  pool of suppliers (one name per phone, as an ERP has them): 202 and one queued row.
- `mutated`: the same shape mutated (`tests.fuzz.mutate`), right key: an answer in
  200/202/400/413/415/422 (403 for another tenant once keys are per tenant), never 5xx.
- refusals, which must write nothing: no key, a wrong key in either header, the right
  key in the wrong scheme or header, non-ASCII keys, wrong content types (right key),
  bodies over 64 KiB (right key), and, once keys are per tenant (`core.api_keys`), the
  default tenant's key for another tenant's event and a stored key of another tenant
  for the default tenant's (403), and a revoked key (401). Valid events then also come
  for that other tenant, with its own key.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any

from tests.fuzz.cases import JSON, PO_EVENTS_PATH, Case
from tests.fuzz.mutate import mutate

NAMES = (
    "Aceros del Norte S.L.", "Harinas Martín", "Łódź Stal Sp. z o.o.", "Café São João Ltda",
    "Müller & Söhne GmbH", "Transportes Núñez", "O'Brien Supplies", "Papelera Ibérica",
    "東京商事", "Ñandú Logística", "Élan Matériaux SARL", "Química Ávila",
)  # fmt: skip
CURRENCIES = ("EUR", "USD", "GBP", "MXN")
LANGUAGES = ("es", "en", None, "es_ES")
WRONG_CONTENT_TYPES = (b"text/plain", b"application/x-www-form-urlencoded", b"", b"application/xml")
OTHER_TENANT = "fuzz-other"


class ErpGenerator:
    """Seeded ERP events for one tenant and key."""

    def __init__(
        self,
        rng: random.Random,
        tenant: str,
        key: str,
        *,
        per_tenant_keys: bool,
        other_key: str | None = None,
        revoked_key: str | None = None,
    ) -> None:
        self.rng = rng
        self.tenant = tenant
        self.key = key
        self.per_tenant_keys = per_tenant_keys
        self.other_key = other_key  # a stored key of OTHER_TENANT
        self.revoked_key = revoked_key  # a stored key, revoked
        self._serial = 0
        # A pool of suppliers: distinct Spanish mobiles (6xx), never the README's example.
        phones = rng.sample(range(600_000_000, 700_000_000), 200)
        self.suppliers = [
            (f"{rng.choice(NAMES)} {i:03d}", f"+{34}{p}", f"S-{i:04d}")
            for i, p in enumerate(n for n in phones if n != 612_345_678)
        ]
        self.valid_po_numbers: list[str] = []  # PO numbers of valid events, either tenant
        self.tenant_of: dict[str, str] = {}  # PO number of a valid event -> its tenant
        self._valid_events: dict[str, tuple[dict[str, Any], tuple[bytes, bytes]]] = {}

    def _po_number(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}-{self._serial:06d}"

    def valid_event(self, po_number: str, tenant: str | None = None) -> dict[str, Any]:
        """A well-formed event as the README documents it (phones written several ways)."""
        name, phone, ref = self.rng.choice(self.suppliers)
        shown = self.rng.choice(
            (phone, f"{phone[:3]} {phone[3:6]} {phone[6:9]} {phone[9:]}", "00" + phone[1:])
        )
        amount = Decimal(self.rng.randrange(1, 10**8)) / 100
        event: dict[str, Any] = {
            "event_id": f"evt-{self.rng.getrandbits(64):016x}",
            "event_type": "po.approved",
            "tenant_id": tenant or self.tenant,
            "po": {"id": str(self.rng.randrange(10**6)), "number": po_number},
            "supplier": {
                "name": name,
                "phone": shown,
                "language": self.rng.choice(LANGUAGES),
                "id": ref,
                "whatsapp_consent": True,
            },
            "total": {"amount": str(amount), "currency": self.rng.choice(CURRENCIES)},
        }
        if self.rng.random() < 0.5:
            event["approved_at"] = "2026-03-04T09:30:00Z"
        if self.rng.random() < 0.2:
            event["total"]["amount"] = float(amount) if amount < 10**6 else str(amount)
        return event

    def _mutated_body(self) -> bytes:
        base = self.valid_event(self._po_number("FZM"))
        base["supplier"]["phone"] = f"+34 71{self.rng.randrange(10**7):07d}"  # not the pool's
        return mutate(base, self.rng)[0]

    def _case(
        self,
        kind: str,
        body: bytes,
        headers: list[tuple[bytes, bytes]],
        allowed: set[int],
        ref: str | None = None,
    ) -> Case:
        return Case(PO_EVENTS_PATH, kind, body, tuple(headers), frozenset(allowed), ref=ref)

    def _right_key(self) -> tuple[bytes, bytes]:
        if self.rng.random() < 0.5:
            return (b"authorization", f"Bearer {self.key}".encode())
        return (b"x-api-key", self.key.encode())

    def accepted_case(self) -> Case:
        """Right key, JSON: a valid event (half the time; some for the other tenant with its
        own key, once keys are per tenant) or a mutated one."""
        if self.rng.random() < 0.5:
            po_number = self._po_number("FZV")
            tenant, key = self.tenant, self._right_key()
            if self.other_key is not None and self.rng.random() < 0.2:
                tenant, key = OTHER_TENANT, (b"x-api-key", self.other_key.encode())
            event = self.valid_event(po_number, tenant)
            body = json.dumps(event).encode()
            self.valid_po_numbers.append(po_number)
            self.tenant_of[po_number] = tenant
            self._valid_events[po_number] = (event, key)
            return self._case("valid", body, [JSON, key], {202}, po_number)
        allowed = {200, 202, 400, 413, 415, 422} | ({403} if self.per_tenant_keys else set())
        return self._case("mutated", self._mutated_body(), [JSON, self._right_key()], allowed)

    def replay_case(self, po_number: str) -> Case:
        """A valid event for an already queued PO, under a new event id: 200 duplicate."""
        original, key = self._valid_events[po_number]
        event = {**original, "event_id": f"evt-{self.rng.getrandbits(64):016x}"}
        body = json.dumps(event).encode()
        return self._case("replay", body, [JSON, key], {200}, po_number)

    def refused_case(self) -> Case:
        """A request that must be refused and write nothing."""
        kinds = [
            "no_key",
            "wrong_key",
            "wrong_key",
            "key_misplaced",
            "wrong_content_type",
            "oversize",
        ]
        if self.per_tenant_keys:
            kinds.append("wrong_tenant")
        if self.other_key is not None and self.revoked_key is not None:
            kinds += ["other_key_wrong_tenant", "revoked_key"]
        kind = self.rng.choice(kinds)
        if kind == "wrong_tenant":  # the default tenant's key, another tenant's event
            body = json.dumps(
                self.valid_event(self._po_number("FZT"), tenant=OTHER_TENANT)
            ).encode()
            return self._case(kind, body, [JSON, self._right_key()], {403})
        if kind == "other_key_wrong_tenant" and self.other_key is not None:
            body = json.dumps(self.valid_event(self._po_number("FZT"))).encode()
            bearer = (b"authorization", f"Bearer {self.other_key}".encode())
            return self._case(kind, body, [JSON, bearer], {403})
        if kind == "revoked_key" and self.revoked_key is not None:
            body = json.dumps(self.valid_event(self._po_number("FZT"))).encode()
            return self._case(kind, body, [JSON, (b"x-api-key", self.revoked_key.encode())], {401})
        body = (
            json.dumps(self.valid_event(self._po_number("FZR"))).encode()
            if self.rng.random() < 0.6
            else self._mutated_body()
        )
        if kind == "no_key":
            return self._case(kind, body, [JSON], {401})
        if kind == "wrong_key":
            key = self.rng.choice(
                (self.key + "x", self.key[:-1], self.key.upper(), "guess", "-", self.key[::-1])
            )
            header = self.rng.choice((b"authorization", b"x-api-key"))
            value = f"Bearer {key}" if header == b"authorization" else key
            return self._case(kind, body, [JSON, (header, value.encode())], {401})
        if kind == "key_misplaced":
            misplaced = self.rng.choice(
                ((b"authorization", f"Basic {self.key}".encode()),
                 (b"authorization", self.key.encode()),
                 (b"x-api-token", self.key.encode()),
                 (b"authorization", "Bearer ключ-\u202e".encode()),
                 (b"x-api-key", b"\xff\xfe" + self.key.encode()))
            )  # fmt: skip
            return self._case(kind, body, [JSON, misplaced], {401})
        if kind == "wrong_content_type":
            content_type = (b"content-type", self.rng.choice(WRONG_CONTENT_TYPES))
            headers = [content_type] if content_type[1] else []
            return self._case(kind, body, [*headers, self._right_key()], {415})
        event = self.valid_event(self._po_number("FZO"))
        event["supplier"]["name"] = "x" * (64 * 1024)
        return self._case(kind, json.dumps(event).encode(), [JSON, self._right_key()], {413})
