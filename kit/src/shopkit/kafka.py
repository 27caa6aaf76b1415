"""Kafka clients with the settings the delivery guarantees depend on, and topic administration."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context

from contracts import topics

log = logging.getLogger(__name__)

DLQ_RETENTION_MS = 30 * 24 * 3600 * 1000

REPLAY_FOR_HEADER = "shop_replay_for"
"""On a parked message put back on its topic: the one consumer group it is replayed for.

Every group reads the topic, and a group that applied the event long ago may no longer hold it
in its inbox (kept for days, parked messages for a month): the others skip it unread."""


@dataclass(frozen=True)
class KafkaSecurity:
    """How clients authenticate to the brokers (PLAINTEXT locally; TLS + SASL/SCRAM on MSK)."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None

    def client_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.protocol in ("SSL", "SASL_SSL"):
            options["ssl_context"] = create_ssl_context(cafile=self.ssl_cafile)
        if self.protocol.startswith("SASL"):
            options.update(
                sasl_mechanism=self.sasl_mechanism or "SCRAM-SHA-512",
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.sasl_password,
            )
        return options


_security = KafkaSecurity()


def configure_security(security: KafkaSecurity) -> None:
    """Set once per process (a process talks to one cluster); every client below uses it."""
    global _security
    _security = security


def client_options() -> dict[str, Any]:
    return _security.client_options()


def create_producer(bootstrap: str, *, client_id: str) -> AIOKafkaProducer:
    """An idempotent producer: acks from all in-sync replicas, no duplicates on retry, and
    per-partition order kept across retries."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=2,
        max_batch_size=256 * 1024,
        request_timeout_ms=30_000,
        retry_backoff_ms=200,
        compression_type=None,
        **client_options(),
    )


def create_consumer(
    bootstrap: str, *, group_id: str, client_id: str, **options: object
) -> AIOKafkaConsumer:
    """A consumer that never commits on its own: offsets move only after the effect is durable."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
        max_poll_interval_ms=300_000,
        **client_options(),
        **options,
    )


async def ensure_topics(
    bootstrap: str,
    names: list[str] | tuple[str, ...],
    *,
    partitions: int = topics.PARTITIONS,
    config: dict[str, str] | None = None,
) -> list[str]:
    """Create the topics that do not exist yet; returns the ones created."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="shop-admin", **client_options()
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in names if name not in existing]
        if not missing:
            return []
        with contextlib.suppress(TopicAlreadyExistsError):  # another process created it first
            await admin.create_topics(
                [NewTopic(name, partitions, 1, topic_configs=config or {}) for name in missing]
            )
        return missing
    finally:
        await admin.close()


async def ping(bootstrap: str, timeout: float = 5.0) -> bool:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="shop-ping",
        request_timeout_ms=int(timeout * 1000),
        **client_options(),
    )
    try:
        await asyncio.wait_for(admin.start(), timeout)
        await asyncio.wait_for(admin.list_topics(), timeout)
        return True
    except Exception:
        return False
    finally:
        await admin.close()


async def partitions_of(bootstrap: str, topic: str) -> list[TopicPartition]:
    """The partitions of a topic (empty when it does not exist)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="shop-describe", **client_options()
    )
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    found = [d for d in described if d.get("topic") == topic and d.get("error_code") == 0]
    if not found:
        return []
    return [
        TopicPartition(topic, p["partition"])
        for p in sorted(found[0]["partitions"], key=lambda p: p["partition"])
    ]


async def committed_offsets(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    """The offsets a consumer group has committed, by partition."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="shop-offsets", **client_options()
    )
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
