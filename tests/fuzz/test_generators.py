"""The fuzz generators themselves: one seed, one input; "valid" cases really are valid.

No app and no database: the run's claims ("every valid one applied") only mean something
if the cases it calls valid pass the app's own parsers, and a failure can be replayed
only if the seed alone decides the input.
"""

from __future__ import annotations

import random

from core.po_events.schema import parse_po_event
from core.settings import SANDBOX_APP_SECRET
from core.webhooks.parse import decode_body
from core.webhooks.signature import SignatureCheck, check_signature
from tests.fuzz.cases import Case
from tests.fuzz.erp_gen import ErpGenerator
from tests.fuzz.mutate import mutate
from tests.fuzz.webhook_gen import TrackedMessage, WebhookGenerator, sample_docs

SECRET = "fuzz-secret"


def generators(seed: int) -> tuple[WebhookGenerator, ErpGenerator]:
    tracked = [TrackedMessage(f"id-{i}", f"wamid.T{i}") for i in range(5)]
    webhooks = WebhookGenerator(random.Random(seed), SECRET, tracked, ["wamid.G0", "wamid.G1"])
    erp = ErpGenerator(random.Random(seed + 1), "default", "k-Key-1", per_tenant_keys=True)
    return webhooks, erp


def draw(seed: int, count: int = 80) -> list[Case]:
    webhooks, erp = generators(seed)
    cases = [webhooks.accepted_case() for _ in range(count)]
    cases += [webhooks.refused_case() for _ in range(count)]
    cases += [erp.accepted_case() for _ in range(count)]
    return cases + [erp.refused_case() for _ in range(count)]


def test_one_seed_always_gives_the_same_input_and_another_seed_another() -> None:
    assert draw(7) == draw(7)
    assert draw(7) != draw(8)


def test_valid_cases_pass_the_apps_own_checks() -> None:
    cases = draw(11, 200)
    valid_webhooks = [c for c in cases if c.kind in ("valid_status", "sample")]
    valid_events = [c for c in cases if c.kind == "valid"]
    assert len(valid_webhooks) > 50 and len(valid_events) > 50
    for case in valid_webhooks:
        signature = dict(case.headers)[b"x-hub-signature-256"].decode()
        assert check_signature(SECRET, case.body, signature) is SignatureCheck.OK
        decode_body(case.body)  # raises InvalidBody if it is not a webhook
    for case in valid_events:
        assert parse_po_event(case.body).po.number == case.ref


def test_refused_webhooks_never_carry_a_valid_signature_of_what_they_send() -> None:
    refused = [c for c in draw(3, 200) if c.door == "webhook" and c.kind != "hang_up"]
    refused = [c for c in refused if 401 in c.allowed]
    assert {c.kind for c in refused} >= {"unsigned", "wrong_secret", "sandbox_secret"}
    for case in refused:
        signature = dict(case.headers).get(b"x-hub-signature-256", b"").decode()
        assert check_signature(SECRET, case.body, signature) is not SignatureCheck.OK
        # The sandbox's public secret signs them right: a live app must still refuse them.
        sandbox_ok = check_signature(SANDBOX_APP_SECRET, case.body, signature) is SignatureCheck.OK
        assert sandbox_ok == (case.kind == "sandbox_secret")


def test_mutations_reach_every_operation() -> None:
    rng = random.Random(5)
    docs = sample_docs()
    seen: set[str] = set()
    for _ in range(600):
        seen.update(mutate(rng.choice(docs), rng)[1])
    assert seen >= {
        "wrong_type", "drop", "huge_string", "odd_unicode", "deep", "dup_key",
        "truncate", "bad_utf8", "bom", "trailing_junk",
    }  # fmt: skip
