"""The base of every event model and the registry from `ce_type` to model."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

_TYPE_PATTERN = re.compile(r"^shop\.[a-z]+\.[a-z_]+\.v[0-9]+$")

REGISTRY: dict[str, type[Event]] = {}
"""Every event type known to this contracts version, by its CloudEvents `type`."""


class Event(BaseModel):
    """A domain event: an immutable fact, named in the past tense.

    Subclasses declare their wire identity as class variables; changes within one `.vN` type
    must be additive (optional fields only), anything else is a new type `.vN+1`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    ce_type: ClassVar[str]
    """CloudEvents type, e.g. `shop.orders.order_placed.v1`."""
    topic: ClassVar[str]
    """The topic of the producing context."""
    key_field: ClassVar[str]
    """The field holding the aggregate id: the Kafka key and CloudEvents subject."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        ce_type = cls.__dict__.get("ce_type")
        if ce_type is None:  # an intermediate base class
            return
        if not _TYPE_PATTERN.match(ce_type):
            raise TypeError(f"{cls.__name__}.ce_type {ce_type!r} is not shop.<context>.<name>.vN")
        if cls.key_field not in cls.model_fields:
            raise TypeError(f"{cls.__name__}.key_field {cls.key_field!r} is not a field")
        if ce_type in REGISTRY and REGISTRY[ce_type] is not cls:
            raise TypeError(f"duplicate event type {ce_type}")
        REGISTRY[ce_type] = cls

    @property
    def key(self) -> str:
        """Aggregate id: keeps one aggregate's events on one partition, in order."""
        return str(getattr(self, self.key_field))


class Model(BaseModel):
    """A value object nested inside events."""

    model_config = ConfigDict(extra="forbid", frozen=True)
