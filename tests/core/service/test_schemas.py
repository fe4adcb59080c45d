"""The seed's webhook payload schema reads every sample body Meta-shaped as wanotify does."""

from __future__ import annotations

import orjson
import pytest

from core.models.types import utcnow
from core.service import WhatsAppWebhookPayload
from core.webhooks.parse import parse_payload
from tests.core.webhooks.helpers import sample, sample_names


@pytest.mark.parametrize("name", sample_names())
def test_every_sample_validates_and_parses_like_the_raw_body(name: str) -> None:
    doc = orjson.loads(sample(name))
    payload = WhatsAppWebhookPayload.model_validate(doc)
    at = utcnow()
    ours, raw = payload.parsed(at), parse_payload(doc, at)
    assert [s.key for s in ours.statuses] == [s.key for s in raw.statuses]
    assert [m.wamid for m in ours.messages] == [m.wamid for m in raw.messages]
    assert len(list(payload.statuses())) == len(raw.statuses)
    assert len(list(payload.messages())) == len(raw.messages)


@pytest.mark.parametrize(
    "doc",
    [{}, {"object": "x"}, {"object": "x", "entry": [{"changes": []}]}, {"object": 1, "entry": 2}],
)
def test_a_malformed_payload_is_refused(doc: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        WhatsAppWebhookPayload.model_validate(doc)
