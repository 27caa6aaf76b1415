"""An AsyncAPI 3.0 document describing every topic and event, generated from the models."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from contracts import topics
from contracts.base import REGISTRY
from contracts.schemas import platform_types

VERSION = "1.0.0"

_CLOUD_EVENT_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "CloudEvents 1.0 attributes in Kafka binary mode, plus the saga's causal chain.",
    "required": ["ce_specversion", "ce_id", "ce_type", "ce_source", "ce_subject", "ce_time"],
    "properties": {
        "ce_specversion": {"type": "string", "const": "1.0"},
        "ce_id": {"type": "string", "format": "uuid", "description": "UUIDv7 of this event."},
        "ce_type": {"type": "string", "examples": ["shop.orders.order_placed.v1"]},
        "ce_source": {"type": "string", "examples": ["/services/orders"]},
        "ce_subject": {"type": "string", "description": "Aggregate id; also the Kafka key."},
        "ce_time": {"type": "string", "format": "date-time"},
        "content-type": {"type": "string", "const": "application/json"},
        "correlation_id": {"type": "string", "description": "Shared by one business flow."},
        "causation_id": {"type": "string", "description": "Id of the event that caused this."},
        "traceparent": {"type": "string", "description": "W3C trace context."},
        "tracestate": {"type": "string"},
    },
}


def _channel_id(topic: str) -> str:
    context = topic.split(".", 1)[0]
    return f"{context}Events"


def document() -> dict[str, Any]:
    models = [REGISTRY[ce_type] for ce_type in platform_types()]
    _, definitions = models_json_schema(
        [(model, "validation") for model in models],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = dict(sorted(definitions.get("$defs", {}).items()))
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in topics.ALL:
        channel = _channel_id(topic)
        in_topic = [m for m in models if m.topic == topic]
        channels[channel] = {
            "address": topic,
            "description": f"Events published by the {topic.split('.')[0]} service "
            f"({topics.PARTITIONS} partitions).",
            "messages": {
                m.__name__: {"$ref": f"#/components/messages/{m.__name__}"} for m in in_topic
            },
        }
        operations[f"publish{channel[0].upper()}{channel[1:]}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{m.__name__}"} for m in in_topic],
        }
        for model in in_topic:
            messages[model.__name__] = {
                "name": model.ce_type,
                "title": model.__name__,
                "summary": (model.__doc__ or model.__name__).strip().splitlines()[0],
                "contentType": "application/json",
                "headers": {"$ref": "#/components/schemas/CloudEventHeaders"},
                "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
                "bindings": {
                    "kafka": {
                        "key": {"type": "string", "description": f"The event's {model.key_field}."},
                        "bindingVersion": "0.5.0",
                    }
                },
            }
    schemas["CloudEventHeaders"] = _CLOUD_EVENT_HEADERS
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "shop events",
            "version": VERSION,
            "description": "Domain events of the shop platform. Each topic is keyed by the "
            "aggregate whose events must stay ordered; payloads are JSON, amounts are integer "
            "minor units with an ISO 4217 currency, ids are UUIDv7 strings.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "The local single-node KRaft broker started by `make up`.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }
