"""`core.webhooks.parse`: lenient, typed events from Meta's JSON; never drops the rest."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.webhooks.parse import MAX_DEPTH, InvalidBody, count_events, decode_body, parse_payload
from tests.core.webhooks.helpers import (
    SAMPLE_FAILED_WAMID,
    SAMPLE_MESSAGE_ID,
    SAMPLE_WAMID,
    T0,
    UTILITY,
    envelope,
    sample,
    sample_names,
    status,
    statuses_body,
    value,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def parse(doc: dict[str, Any] | bytes):
    raw = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    return parse_payload(decode_body(raw), NOW)


@pytest.mark.parametrize("name", sample_names())
def test_every_sample_parses_without_issues(name: str) -> None:
    parsed = parse(sample(name))
    assert parsed.issues == []
    assert parsed.event_count >= 1
    assert count_events(decode_body(sample(name))) == parsed.event_count


def test_sent_sample() -> None:
    (update,) = parse(sample("status_sent.json")).statuses
    assert update.wamid == SAMPLE_WAMID
    assert update.status == "sent"
    assert update.at == datetime.fromtimestamp(1763990000, UTC)
    assert update.callback_data == SAMPLE_MESSAGE_ID
    assert update.recipient_id == "34612345678"
    assert update.phone_number_id == "106540352242922"
    assert update.pricing is not None and update.pricing.category == "utility"
    assert update.pricing.model == "PMP" and update.pricing.type == "regular"
    assert update.pricing.billable is True
    assert update.conversation is None


def test_failed_sample_keeps_code_title_message_details() -> None:
    (update,) = parse(sample("status_failed.json")).statuses
    assert update.wamid == SAMPLE_FAILED_WAMID
    assert update.error is not None
    assert update.error.code == 131026
    assert update.error.title == "Message undeliverable"
    assert update.error.details == "Message Undeliverable."


def test_batch_sample_gives_every_status() -> None:
    parsed = parse(sample("statuses_batch.json"))
    assert [(s.wamid, s.status) for s in parsed.statuses] == [
        ("wamid.BATCH0001", "delivered"),
        ("wamid.BATCH0002", "read"),
        ("wamid.BATCH0003", "sent"),
    ]


def test_inbound_samples() -> None:
    (button,) = parse(sample("inbound_button.json")).messages
    assert button.type == "button" and button.is_button_reply
    assert button.payload == "ack:PO-2026-0042" and button.text == "Confirmar"
    assert button.context_wamid == SAMPLE_WAMID
    assert button.profile_name == "Harinas Martín" and button.from_wa_id == "34612345678"
    (text,) = parse(sample("inbound_text.json")).messages
    assert text.text == "Recibido, lo servimos el jueves." and not text.is_button_reply
    (unsupported,) = parse(sample("inbound_unsupported.json")).messages
    assert unsupported.type == "unsupported"
    assert unsupported.errors[0].code == 131051


def test_many_entries_changes_and_statuses_all_come_through() -> None:
    doc = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": str(e),
                "changes": [
                    {
                        "field": "messages",
                        "value": value(
                            statuses=[status(f"wamid.E{e}C{c}S{s}", "sent", T0) for s in range(5)]
                        ),
                    }
                    for c in range(4)
                ],
            }
            for e in range(3)
        ],
    }
    parsed = parse(doc)
    assert len(parsed.statuses) == 60
    assert len({s.wamid for s in parsed.statuses}) == 60
    assert count_events(doc) == 60


def test_a_failed_status_whose_contact_has_only_wa_id() -> None:
    item = status("wamid.X", "failed", T0, errors=[{"code": 131049}])
    doc = envelope(value(statuses=[item], contacts=[{"wa_id": "34612345678"}]))
    (update,) = parse(doc).statuses
    assert update.error is not None and update.error.code == 131049
    assert update.error.title is None and update.error.details is None


def test_unknown_status_word_and_new_fields_are_kept_without_dropping_the_rest() -> None:
    weird = status("wamid.A", "Warped", T0)
    weird["brand_new_field"] = {"nested": [1, 2, 3]}
    doc = envelope(value(statuses=[weird, status("wamid.B", "delivered", T0)]))
    doc["entry"][0]["changes"][0]["value"]["future_list"] = [{"x": 1}]
    doc["entry"][0]["surprise"] = True
    parsed = parse(doc)
    assert [(s.wamid, s.status) for s in parsed.statuses] == [
        ("wamid.A", "warped"),
        ("wamid.B", "delivered"),
    ]
    assert parsed.statuses[0].raw["brand_new_field"] == {"nested": [1, 2, 3]}


def test_unusable_parts_are_noted_and_skipped() -> None:
    good = status("wamid.GOOD", "read", T0)
    doc = {
        "object": "whatsapp_business_account",
        "entry": [
            "not an entry",
            {"id": "1", "changes": "nope"},
            {
                "id": "2",
                "changes": [
                    7,
                    {"field": "messages", "value": []},
                    {
                        "field": "messages",
                        "value": value(
                            statuses=[
                                {"status": "sent"},  # no id
                                {"id": "wamid.NOWORD"},  # no status word
                                "text",
                                {"id": "x" * 500, "status": "sent"},  # absurd id
                                good,
                            ],
                            messages=[{"id": "wamid.IN"}, {"from": "346"}],
                        ),
                    },
                ],
            },
        ],
    }
    parsed = parse(doc)
    assert [s.wamid for s in parsed.statuses] == ["wamid.GOOD"]
    assert parsed.messages == []
    assert len(parsed.issues) == 10


def test_unusable_timestamps_fall_back_to_the_receipt_time() -> None:
    items = [
        status("wamid.1", "sent", T0),
        {**status("wamid.2", "sent", T0), "timestamp": "soon"},
        {**status("wamid.3", "sent", T0), "timestamp": 12},  # 1970
        {**status("wamid.4", "sent", T0), "timestamp": True},
        {**status("wamid.5", "sent", T0), "timestamp": T0 + 0.5},
    ]
    items[0].pop("timestamp")
    parsed = parse(envelope(value(statuses=items)))
    ats = [s.at for s in parsed.statuses]
    assert ats[:4] == [NOW, NOW, NOW, NOW]
    assert ats[4] == datetime.fromtimestamp(T0 + 0.5, UTC)
    assert len(parsed.issues) == 4


def test_other_objects_and_fields_are_well_formed_but_ignored() -> None:
    parsed = parse({"object": "page", "entry": [{"changes": []}]})
    assert parsed.event_count == 0 and parsed.issues
    doc = envelope({"anything": 1}, field="phone_number_quality_update")
    parsed = parse(doc)
    assert [c.field for c in parsed.other_changes] == ["phone_number_quality_update"]


def test_template_status_change() -> None:
    doc = envelope(
        {
            "event": "paused",
            "message_template_id": 123456,
            "message_template_name": "po_notification",
            "message_template_language": "es",
            "reason": "LOW_QUALITY",
        },
        field="message_template_status_update",
    )
    (change,) = parse(doc).template_changes
    assert (change.kind, change.name, change.language, change.value) == (
        "status", "po_notification", "es", "PAUSED",
    )  # fmt: skip
    assert change.template_id == "123456" and change.reason == "LOW_QUALITY"


def test_inbound_kinds() -> None:
    base = {"from": "34612345678", "timestamp": str(T0)}
    messages = [
        {**base, "id": "w1", "type": "interactive",
         "interactive": {"type": "button_reply", "button_reply": {"id": "reject:PO-9",
                                                                   "title": "Rechazar"}}},
        {**base, "id": "w2", "type": "image",
         "image": {"id": "MEDIA1", "mime_type": "image/jpeg", "caption": "albarán"}},
        {**base, "id": "w3", "type": "document",
         "document": {"id": "MEDIA2", "mime_type": "application/pdf", "filename": "f.pdf"}},
        {**base, "id": "w4", "type": "reaction",
         "reaction": {"message_id": "wamid.OURS", "emoji": "👍"}},
        {**base, "id": "w5", "type": "location",
         "location": {"latitude": 40.4, "longitude": -3.7}},
        {**base, "id": "w6", "type": "hologram", "hologram": {"x": 1}},
    ]  # fmt: skip
    parsed = parse(envelope(value(messages=messages)))
    by_id = {m.wamid: m for m in parsed.messages}
    assert by_id["w1"].payload == "reject:PO-9" and by_id["w1"].text == "Rechazar"
    assert by_id["w1"].is_button_reply
    assert (by_id["w2"].media_id, by_id["w2"].media_mime_type, by_id["w2"].text) == (
        "MEDIA1", "image/jpeg", "albarán",
    )  # fmt: skip
    assert by_id["w3"].text == "f.pdf"
    assert by_id["w4"].context_wamid == "wamid.OURS" and by_id["w4"].text == "👍"
    assert by_id["w5"].text == "40.4,-3.7"
    assert by_id["w6"].type == "hologram" and by_id["w6"].text is None
    assert parsed.issues == []


def test_strings_are_clipped_and_nul_free() -> None:
    item = status("wamid.C", "sent", T0, callback="c" * 2000)
    item["recipient_id"] = "3" * 100
    item["errors"] = [{"code": "131026", "title": "t\x00" * 300}]
    text_message = {
        "from": "34612345678", "id": "w\x00x", "timestamp": str(T0), "type": "text",
        "text": {"body": "hola\x00"}, "new": {"k\x00": "v\x00"},
    }  # fmt: skip
    parsed = parse(envelope(value(statuses=[item], messages=[text_message])))
    (update,) = parsed.statuses
    assert len(update.callback_data or "") == 512
    assert len(update.recipient_id or "") == 32
    assert update.error is not None and update.error.code == 131026
    assert "\x00" not in (update.error.title or "") and len(update.error.title or "") <= 255
    (message,) = parsed.messages
    assert message.wamid == "wx" and message.text == "hola"
    assert orjson.dumps(message.raw).find(b"\\u0000") == -1


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "invalid_json"),
        (b"{", "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
        (b'{"entry": [], "x": "\\ud800"}', "invalid_json"),
        (b"[" * 5000 + b"]" * 5000, "invalid_json"),
        (b'{"entry": [], "n": 1e400}', "invalid_json"),
        (b"[]", "not_webhook"),
        (b'"entry"', "not_webhook"),
        (b"{}", "not_webhook"),
        (b'{"entry": {}}', "not_webhook"),
    ],
)
def test_bodies_that_are_not_webhooks(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidBody) as caught:
        decode_body(raw)
    assert caught.value.reason == reason


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=30,
)


def _mutations(doc: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """`doc` with one value anywhere replaced by arbitrary JSON."""
    paths: list[list[Any]] = []

    def walk(node: Any, path: list[Any]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, [*path, key])
        elif isinstance(node, list):
            for i, child in enumerate(node):
                walk(child, [*path, i])

    walk(doc, [])

    def mutate(path: list[Any], replacement: Any) -> dict[str, Any]:
        out = copy.deepcopy(doc)
        if not path:
            return {"entry": [replacement]}
        node = out
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = replacement
        return out

    return st.builds(mutate, st.sampled_from(paths[1:]), JSON)


@settings(max_examples=300, deadline=None)
@given(_mutations(orjson.loads(sample("statuses_batch.json")) | {}))
def test_any_mutation_of_a_batch_parses_and_keeps_the_untouched_statuses(
    doc: dict[str, Any],
) -> None:
    parsed = parse_payload(doc, NOW)
    assert count_events(doc) >= 0
    wamids = [s.wamid for s in parsed.statuses]
    try:
        change = doc["entry"][0]["changes"][0]
        statuses = change["value"]["statuses"]
        assert change["field"] == "messages" or not isinstance(change["field"], str)
        assert doc["object"] == "whatsapp_business_account"
        assert isinstance(statuses, list)
    except (KeyError, IndexError, TypeError, AssertionError):
        return  # the mutation hit the envelope itself: nothing is promised beyond no crash
    intact = [
        s["id"]
        for s in statuses
        if isinstance(s, dict)
        and s.get("id") in ("wamid.BATCH0001", "wamid.BATCH0002", "wamid.BATCH0003")
        and s.get("status") in ("sent", "delivered", "read")
    ]
    for wamid in intact:
        assert wamid in wamids


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_any_json_either_parses_or_is_refused_cleanly(doc: Any) -> None:
    raw = json.dumps(doc).encode()  # json, not orjson: any integer size
    try:
        decoded = decode_body(raw)
    except InvalidBody:
        return
    parse_payload(decoded, NOW)
    count_events(decoded)


def test_pricing_without_fields_is_none_and_partial_pricing_is_kept() -> None:
    a = status("wamid.P1", "sent", T0, pricing={})
    b = status("wamid.P2", "sent", T0, pricing={"category": "marketing", "billable": "yes"})
    c = status("wamid.P3", "sent", T0, pricing=UTILITY,
               conversation={"id": "CONV1", "expiration_timestamp": str(T0 + 86400),
                             "origin": {"type": "utility"}})  # fmt: skip
    p1, p2, p3 = parse(envelope(value(statuses=[a, b, c]))).statuses
    assert p1.pricing is None
    assert p2.pricing is not None and p2.pricing.category == "marketing"
    assert p2.pricing.billable is None
    assert p3.conversation is not None and p3.conversation.id == "CONV1"
    assert p3.conversation.origin == "utility"
    assert p3.conversation.expires_at == datetime.fromtimestamp(T0 + 86400, UTC)


def _depth(node: Any) -> int:
    """Levels of objects and arrays in `node` (a scalar is 0)."""
    if isinstance(node, dict):
        return 1 + max((_depth(v) for v in node.values()), default=0)
    if isinstance(node, list):
        return 1 + max((_depth(v) for v in node), default=0)
    return 0


def _nested_status_body(total_depth: int) -> bytes:
    """A signed-looking status body whose status carries a field nested so the whole
    body is `total_depth` levels deep (found by the fuzz run: 300 levels were
    acknowledged, then set aside by the applier on a RecursionError)."""
    doc = json.loads(statuses_body(status("wamid.DEEP", "read", T0)))
    item = doc["entry"][0]["changes"][0]["value"]["statuses"][0]
    item["extra"] = 1
    levels = total_depth - _depth(doc)  # the levels the field adds below the status
    raw = json.dumps(doc).encode()
    return raw.replace(b'"extra": 1', b'"extra": ' + b"[" * levels + b"1" + b"]" * levels)


@pytest.mark.parametrize("total_depth", [MAX_DEPTH + 1, 300, 1000])
def test_a_body_nested_deeper_than_the_limit_is_refused(total_depth: int) -> None:
    with pytest.raises(InvalidBody) as caught:
        decode_body(_nested_status_body(total_depth))
    assert caught.value.reason == "too_deep"


def test_a_body_nested_as_deep_as_the_limit_parses_and_keeps_its_status() -> None:
    body = _nested_status_body(MAX_DEPTH)
    assert _depth(orjson.loads(body)) == MAX_DEPTH
    parsed = parse(body)
    assert [s.status for s in parsed.statuses] == ["read"]
    assert orjson.loads(orjson.dumps(parsed.statuses[0].raw)) == parsed.statuses[0].raw
