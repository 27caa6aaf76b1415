"""Event contracts of the shop platform: models, topics, envelope and codec.

Importing this package registers every event type in `REGISTRY`. It performs no I/O and
imports nothing from any service.
"""

from contracts import topics
from contracts.base import REGISTRY, Event, Model
from contracts.codec import (
    DecodeError,
    InvalidPayloadError,
    KafkaRecord,
    MissingHeaderError,
    UnknownTypeError,
    decode,
    encode,
)
from contracts.envelope import Envelope, caused_by
from contracts.events import (
    auth,
    catalog,
    inventory,
    notifications,
    orders,
    payments,
    shipping,
    users,
)
from contracts.ids import new_id, uuid7

__all__ = [
    "REGISTRY",
    "DecodeError",
    "Envelope",
    "Event",
    "InvalidPayloadError",
    "KafkaRecord",
    "MissingHeaderError",
    "Model",
    "UnknownTypeError",
    "auth",
    "catalog",
    "caused_by",
    "decode",
    "encode",
    "inventory",
    "new_id",
    "notifications",
    "orders",
    "payments",
    "shipping",
    "topics",
    "users",
    "uuid7",
]
