from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from contracts.events.inventory import StockLine, StockReserved
from contracts.events.payments import PaymentAuthorized
from contracts.ids import is_uuid7, uuid7
from pydantic import ValidationError

from contracts import (
    REGISTRY,
    Envelope,
    InvalidPayloadError,
    MissingHeaderError,
    UnknownTypeError,
    caused_by,
    decode,
    encode,
    new_id,
    topics,
)


def _reserved(**overrides: object) -> StockReserved:
    fields: dict[str, object] = {
        "order_id": new_id(),
        "reservation_id": new_id(),
        "lines": [StockLine(sku="SKU-1", quantity=2)],
        "expires_at": datetime.now(UTC) + timedelta(minutes=15),
    }
    fields.update(overrides)
    return StockReserved.model_validate(fields)


def test_round_trip_keeps_every_attribute() -> None:
    event = _reserved()
    envelope = Envelope(data=event, traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01")
    record = encode(envelope)

    assert record.topic == topics.INVENTORY
    assert record.key == event.order_id.encode()
    headers = dict(record.headers)
    assert headers["ce_type"] == b"shop.inventory.stock_reserved.v1"
    assert headers["ce_source"] == b"/services/inventory"
    assert headers["ce_subject"] == event.order_id.encode()
    assert headers["ce_specversion"] == b"1.0"

    back = decode(record.headers, record.value)
    assert back.data == event
    assert back.id == envelope.id
    assert back.time == envelope.time
    assert back.correlation_id == envelope.id
    assert back.traceparent == envelope.traceparent


def test_caused_by_continues_the_flow() -> None:
    first = Envelope(data=_reserved(), traceparent="00-" + "c" * 32 + "-" + "d" * 16 + "-01")
    order_id = first.data.order_id
    second = caused_by(
        first,
        PaymentAuthorized(
            order_id=order_id,
            payment_id=new_id(),
            provider_payment_id="pi_1",
            amount=1000,
            currency="BRL",
            authorized_at=datetime.now(UTC),
        ),
    )
    assert second.correlation_id == first.correlation_id
    assert second.causation_id == first.id
    assert second.traceparent == first.traceparent
    assert second.id != first.id


def test_uuid7_is_time_ordered_and_valid() -> None:
    ids = [uuid7() for _ in range(5000)]
    assert all(u.version == 7 for u in ids)
    assert [u.int for u in ids] == sorted(u.int for u in ids)
    assert len(set(ids)) == len(ids)
    assert is_uuid7(str(ids[0]))
    assert not is_uuid7("not-a-uuid")
    assert not is_uuid7("4c8f8a3e-2b1d-4f0e-9a57-0c6b0f7c2d11")  # v4


def test_models_reject_floats_negative_money_and_naive_times() -> None:
    with pytest.raises(ValidationError):
        PaymentAuthorized(
            order_id=new_id(),
            payment_id=new_id(),
            provider_payment_id="pi",
            amount=10.5,  # type: ignore[arg-type]
            currency="BRL",
            authorized_at=datetime.now(UTC),
        )
    with pytest.raises(ValidationError):
        PaymentAuthorized(
            order_id=new_id(),
            payment_id=new_id(),
            provider_payment_id="pi",
            amount=-1,
            currency="BRL",
            authorized_at=datetime.now(UTC),
        )
    with pytest.raises(ValidationError):
        _reserved(expires_at=datetime(2030, 1, 1))  # naive
    with pytest.raises(ValidationError):
        _reserved(order_id="12345")
    with pytest.raises(ValidationError):
        StockReserved.model_validate({**_reserved().model_dump(), "surprise": 1})


def test_times_are_normalised_to_utc() -> None:
    local = datetime(2030, 1, 1, 12, tzinfo=timezone(timedelta(hours=-3)))
    assert _reserved(expires_at=local).expires_at == datetime(2030, 1, 1, 15, tzinfo=UTC)


def test_unknown_type_missing_header_and_bad_json_have_reasons() -> None:
    record = encode(Envelope(data=_reserved()))
    headers = [(k, v) for k, v in record.headers if k != "ce_type"]
    with pytest.raises(MissingHeaderError, match="ce_type"):
        decode(headers, record.value)

    unknown = [(k, b"shop.nothing.happened.v1" if k == "ce_type" else v) for k, v in record.headers]
    with pytest.raises(UnknownTypeError):
        decode(unknown, record.value)

    with pytest.raises(InvalidPayloadError):
        decode(record.headers, b"{not json")

    payload = json.loads(record.value)
    payload["lines"] = []
    with pytest.raises(InvalidPayloadError, match="lines"):
        decode(record.headers, json.dumps(payload).encode())


def test_reader_tolerates_fields_added_by_a_newer_producer() -> None:
    record = encode(Envelope(data=_reserved()))
    payload = json.loads(record.value)
    payload["added_in_a_later_minor_version"] = "x"
    assert decode(record.headers, json.dumps(payload).encode()).data.order_id == payload["order_id"]


def test_every_event_has_a_consistent_identity() -> None:
    for ce_type, model in REGISTRY.items():
        context = ce_type.split(".")[1]
        assert model.topic == f"{context}.events", ce_type
        assert model.key_field in model.model_fields, ce_type
        assert model.model_config.get("extra") == "forbid", ce_type
        assert model.__name__[-2:] in {"ed", "nt", "on", "ow"} or model.__name__.endswith(
            ("Required", "Sent")
        ), f"{model.__name__} should be named in the past tense"


def test_is_uuid7_takes_only_the_canonical_spelling() -> None:
    """`uuid.UUID()` parses spellings the database driver cannot encode as a UUID parameter."""
    canonical = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
    assert is_uuid7(canonical)
    assert not is_uuid7("e3e70682-c209-4cac-a29f-6fbed82c07cd")  # version 4
    for other in (
        "{" + canonical + "}",
        "urn:uuid:" + canonical,
        canonical.replace("-", ""),
        canonical.upper(),
        "0190-a1b2-c3d4-7e5f-8a9b-0c1d-2e3f-4a5b",
        "",
        "x",
    ):
        assert not is_uuid7(other), other
