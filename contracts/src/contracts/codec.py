"""Encode envelopes to Kafka records and decode them back, with precise failure reasons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from contracts.base import REGISTRY, Event
from contracts.envelope import SPEC_VERSION, Envelope
from contracts.ids import is_uuid7

Headers = list[tuple[str, bytes]]

CONTENT_TYPE = b"application/json"


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    topic: str
    key: bytes
    value: bytes
    headers: Headers


class DecodeError(Exception):
    """A message that can never be handled as it is: it belongs in a dead-letter topic."""

    reason = "malformed"

    def __init__(self, detail: str) -> None:
        super().__init__(f"{self.reason}: {detail}")
        self.detail = detail


class MissingHeaderError(DecodeError):
    reason = "missing_header"


class UnknownTypeError(DecodeError):
    reason = "unknown_type"


class InvalidPayloadError(DecodeError):
    reason = "invalid_payload"


def headers_of(envelope: Envelope[Event]) -> Headers:
    headers: Headers = [
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_id", envelope.id.encode()),
        ("ce_type", envelope.type.encode()),
        ("ce_source", envelope.source.encode()),
        ("ce_subject", envelope.subject.encode()),
        ("ce_time", envelope.time.isoformat().encode()),
        ("content-type", CONTENT_TYPE),
        ("correlation_id", envelope.correlation_id.encode()),
    ]
    if envelope.causation_id:
        headers.append(("causation_id", envelope.causation_id.encode()))
    if envelope.traceparent:
        headers.append(("traceparent", envelope.traceparent.encode()))
    if envelope.tracestate:
        headers.append(("tracestate", envelope.tracestate.encode()))
    return headers


def encode(envelope: Envelope[Event]) -> KafkaRecord:
    return KafkaRecord(
        topic=envelope.topic,
        key=envelope.subject.encode(),
        value=envelope.data.model_dump_json().encode(),
        headers=headers_of(envelope),
    )


def header_map(headers: Headers | None) -> dict[str, str]:
    """Header values as text (the last one wins, as Kafka clients read them)."""
    result: dict[str, str] = {}
    for name, raw in headers or ():
        try:
            result[name] = raw.decode() if raw is not None else ""
        except UnicodeDecodeError:
            result[name] = ""
    return result


def _required(headers: dict[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise MissingHeaderError(f"header {name} is missing")
    return value


def decode(headers: Headers | None, value: bytes | None) -> Envelope[Event]:
    """Turn a Kafka record back into an envelope, or raise a `DecodeError` saying why not."""
    meta = header_map(headers)
    if meta.get("ce_specversion", SPEC_VERSION) != SPEC_VERSION:
        raise InvalidPayloadError(f"unsupported ce_specversion {meta['ce_specversion']!r}")
    event_id = _required(meta, "ce_id")
    if not is_uuid7(event_id):
        raise InvalidPayloadError(f"ce_id {event_id!r} is not a UUIDv7")
    ce_type = _required(meta, "ce_type")
    model = REGISTRY.get(ce_type)
    if model is None:
        raise UnknownTypeError(f"no event model for ce_type {ce_type!r}")
    try:
        time = datetime.fromisoformat(_required(meta, "ce_time"))
    except ValueError as exc:
        raise InvalidPayloadError(f"ce_time is not ISO 8601: {exc}") from exc
    if value is None:
        raise InvalidPayloadError("message has no value")
    try:
        # Tolerant reader: a newer producer may add optional fields this version does not know.
        data = model.model_validate_json(value, extra="ignore")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        raise InvalidPayloadError(f"{ce_type}: {where}: {first['msg']}") from exc
    return Envelope(
        data=data,
        id=event_id,
        time=time,
        correlation_id=meta.get("correlation_id") or event_id,
        causation_id=meta.get("causation_id") or None,
        traceparent=meta.get("traceparent") or None,
        tracestate=meta.get("tracestate") or None,
    )
