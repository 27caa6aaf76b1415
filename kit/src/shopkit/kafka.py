"""Kafka clients with the settings the delivery guarantees depend on, and topic administration."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context

from contracts import topics

log = logging.getLogger(__name__)

T = TypeVar("T")

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
        return await _partitions(admin, [topic])
    finally:
        await admin.close()


async def _partitions(admin: AIOKafkaAdminClient, names: Sequence[str]) -> list[TopicPartition]:
    """The partitions of the topics that exist among `names`, in topic and partition order."""
    described = await admin.describe_topics(list(names))
    found: list[TopicPartition] = []
    for topic in described:
        if topic.get("error_code") == 0 and topic.get("topic") in names:
            found += [TopicPartition(topic["topic"], p["partition"]) for p in topic["partitions"]]
    return sorted(found)


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


class GroupProgress:
    """How far a consumer group has got through the topics it reads: the end offsets of their
    partitions next to the offsets the group has committed.

    The consumer runtime commits an offset only once the effects of the messages before it are
    committed, so a committed offset at or past a partition's end means everything appended to
    that partition so far has been applied. Meant to be asked periodically: the clients stay
    open between calls (a connection and metadata fetch per call would cost more than the
    question), and are reopened after a failure.
    """

    def __init__(
        self, bootstrap: str, *, group: str, topics: Sequence[str], timeout: float = 10.0
    ) -> None:
        self.bootstrap = bootstrap
        self.group = group
        self.topics = sorted(topics)
        self.timeout = timeout
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None
        """Group-less: it only asks for end offsets, never joins or commits for anyone."""

    async def end_offsets(self) -> dict[TopicPartition, int]:
        """The next offset of every partition of the topics (topics not created yet have none,
        so nothing was appended to them)."""
        return await self._bounded(self._end_offsets())

    async def committed(self) -> dict[TopicPartition, int]:
        """The group's committed offsets on the topics' partitions (none: never committed)."""
        return await self._bounded(self._committed())

    async def caught_up_with(self, ends: dict[TopicPartition, int]) -> bool:
        """Whether the group has committed at least `ends` on every partition of it."""
        committed = await self.committed()
        return all(committed.get(tp, 0) >= end for tp, end in ends.items())

    async def close(self) -> None:
        admin, offsets = self._admin, self._offsets
        self._admin = self._offsets = None
        for client in (admin, offsets):
            if client is None:
                continue
            try:
                await (client.close() if isinstance(client, AIOKafkaAdminClient) else client.stop())
            except Exception:
                log.debug("closing a group progress client failed", exc_info=True)

    async def _bounded(self, work: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(work, self.timeout)
        except BaseException:
            # A client that timed out or lost its broker may be half-connected: start afresh.
            await self.close()
            raise

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._offsets is None:
            await self.close()
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self.bootstrap,
                client_id=f"{self.group}-progress",
                request_timeout_ms=int(self.timeout * 1000),
                **client_options(),
            )
            self._admin = admin
            await admin.start()
            offsets = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                client_id=f"{self.group}-progress",
                group_id=None,
                enable_auto_commit=False,
                request_timeout_ms=int(self.timeout * 1000),
                **client_options(),
            )
            self._offsets = offsets
            await offsets.start()
        return self._admin, self._offsets

    async def _end_offsets(self) -> dict[TopicPartition, int]:
        admin, offsets = await self._clients()
        partitions = await _partitions(admin, self.topics)
        if not partitions:
            return {}
        ends: dict[TopicPartition, int] = await offsets.end_offsets(partitions)
        return dict(ends)

    async def _committed(self) -> dict[TopicPartition, int]:
        admin, _ = await self._clients()
        offsets = await admin.list_consumer_group_offsets(self.group)
        wanted = set(self.topics)
        return {
            tp: meta.offset
            for tp, meta in offsets.items()
            if tp.topic in wanted and meta.offset >= 0
        }
