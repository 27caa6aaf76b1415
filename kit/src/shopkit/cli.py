"""`shop events ...`: look at topics, list parked (dead-lettered) messages and replay them.

Parked messages stay in `<group>.dlq`; the replayer remembers how far it got as the committed
offset of the group `<group>.dlq-replayer`, so `dlq list` shows only what is still parked.
Replaying re-publishes the original record (key, value, original headers) to its original
topic: the failing group handles it again, and every group that had already applied it drops
it through its inbox.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Annotated

import typer
from aiokafka import AIOKafkaConsumer, TopicPartition
from contracts.codec import header_map
from contracts.topics import dead_letter_topic
from rich.console import Console
from rich.table import Table

from contracts import DecodeError, decode
from shopkit.kafka import (
    REPLAY_FOR_HEADER,
    client_options,
    configure_security,
    create_producer,
    partitions_of,
)
from shopkit.settings import ServiceSettings

app = typer.Typer(
    help="Inspect topics and dead-letter queues; replay parked messages.", no_args_is_help=True
)
dlq_app = typer.Typer(help="Dead-letter queues (`<consumer group>.dlq`).", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")


@app.callback()
def _connect() -> None:
    """Kafka credentials come from the shared `SHOP_KAFKA_*` settings."""
    configure_security(ServiceSettings().kafka_security())


console = Console()

BootstrapOption = Annotated[str, typer.Option("--bootstrap", envvar="SHOP_KAFKA_BOOTSTRAP")]
DLQ_PREFIX = "dlq_"
REPLAYED_HEADER = "dlq_replayed"
"""On a marker record in `<group>.dlq`: `partition:offset` of a parked message replayed alone.

A replay by event id moves no offset (the messages parked before it may still wait), so without
the marker the message stayed listed as parked and a later full replay sent it a second time:
applied twice once the group's inbox had forgotten it (kept days; parked messages a month)."""


@dataclass(frozen=True)
class ParkedMessage:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    @property
    def meta(self) -> dict[str, str]:
        return header_map(self.headers)

    @property
    def original_headers(self) -> list[tuple[str, bytes]]:
        return [
            (k, v)
            for k, v in self.headers
            if not k.startswith(DLQ_PREFIX) and k != REPLAY_FOR_HEADER
        ]


def replayer_group(group: str) -> str:
    return f"{group}.dlq-replayer"


async def _end_offsets(
    consumer: AIOKafkaConsumer, bootstrap: str, topic: str
) -> dict[TopicPartition, int]:
    tps = await partitions_of(bootstrap, topic)
    return dict(await consumer.end_offsets(tps)) if tps else {}


async def read_parked(bootstrap: str, group: str) -> list[ParkedMessage]:
    """Messages of `<group>.dlq` after the replayer's committed offsets, not replayed yet."""
    return _still_parked(await _read_dead_letters(bootstrap, group))


def _still_parked(records: list[ParkedMessage]) -> list[ParkedMessage]:
    replayed = {m.meta[REPLAYED_HEADER] for m in records if REPLAYED_HEADER in m.meta}
    parked = [
        m
        for m in records
        if REPLAYED_HEADER not in m.meta and f"{m.partition}:{m.offset}" not in replayed
    ]
    return sorted(parked, key=lambda m: m.meta.get("dlq_failed_at", ""))


async def _read_dead_letters(bootstrap: str, group: str) -> list[ParkedMessage]:
    """Every record of `<group>.dlq` after the replayer's committed offsets, markers included."""
    topic = dead_letter_topic(group)
    consumer = AIOKafkaConsumer(
        **client_options(),
        bootstrap_servers=bootstrap,
        group_id=replayer_group(group),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        ends = await _end_offsets(consumer, bootstrap, topic)
        if not ends:
            return []
        consumer.assign(list(ends))
        parked: list[ParkedMessage] = []
        for tp, end in ends.items():
            committed = await consumer.committed(tp)
            start = (
                committed if committed is not None else (await consumer.beginning_offsets([tp]))[tp]
            )
            if start >= end:
                continue
            consumer.seek(tp, start)
            while (await consumer.position(tp)) < end:
                batch = await consumer.getmany(tp, timeout_ms=2000)
                for record in batch.get(tp, []):
                    if record.offset >= end:
                        break
                    parked.append(
                        ParkedMessage(
                            record.partition,
                            record.offset,
                            record.key,
                            record.value,
                            list(record.headers or ()),
                        )
                    )
                if not batch:
                    break
        return parked
    finally:
        await consumer.stop()


async def replay(bootstrap: str, group: str, event_id: str | None = None) -> list[ParkedMessage]:
    """Re-publish parked messages to their original topics, for `group` alone (the other
    groups on the topic skip them: `REPLAY_FOR_HEADER`); returns those replayed.

    Without `event_id` every parked message is replayed and the replayer's offsets move past
    them; with it, only that message is replayed and a marker record (`REPLAYED_HEADER`) in the
    dead-letter topic takes it off the list, so no later replay sends it again.
    """
    records = await _read_dead_letters(bootstrap, group)
    chosen = [
        m for m in _still_parked(records) if event_id is None or m.meta.get("ce_id") == event_id
    ]
    if not chosen:
        return []
    producer = create_producer(bootstrap, client_id=f"{group}-dlq-replayer")
    await producer.start()
    try:
        for message in chosen:
            topic = message.meta["dlq_original_topic"]
            await (
                await producer.send(
                    topic,
                    value=message.value,
                    key=message.key,
                    headers=[*message.original_headers, (REPLAY_FOR_HEADER, group.encode())],
                )
            )
        if event_id is not None:
            for message in chosen:
                await (
                    await producer.send(
                        dead_letter_topic(group),
                        value=b"",
                        key=message.key,
                        headers=[
                            (REPLAYED_HEADER, f"{message.partition}:{message.offset}".encode())
                        ],
                    )
                )
    finally:
        await producer.stop()
    if event_id is None:
        # Past every record read: the markers and what they name are done with too.
        await _commit_past(bootstrap, group, records)
    return chosen


async def _commit_past(bootstrap: str, group: str, messages: list[ParkedMessage]) -> None:
    topic = dead_letter_topic(group)
    offsets: dict[TopicPartition, int] = {}
    for message in messages:
        tp = TopicPartition(topic, message.partition)
        offsets[tp] = max(offsets.get(tp, 0), message.offset + 1)
    consumer = AIOKafkaConsumer(
        **client_options(),
        bootstrap_servers=bootstrap,
        group_id=replayer_group(group),
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


@dlq_app.command("list")
def dlq_list(
    group: str,
    bootstrap: BootstrapOption = "127.0.0.1:9092",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List the messages parked by a consumer group."""
    parked = asyncio.run(read_parked(bootstrap, group))
    if as_json:
        typer.echo(
            json.dumps(
                [{**m.meta, "dlq_partition": m.partition, "dlq_offset": m.offset} for m in parked],
                indent=2,
            )
        )
        return
    table = Table(title=f"{dead_letter_topic(group)}: {len(parked)} parked")
    for column in ("failed at", "event id", "type", "original", "reason", "attempts", "error"):
        table.add_column(column)
    for m in parked:
        meta = m.meta
        table.add_row(
            meta.get("dlq_failed_at", ""),
            meta.get("ce_id", "-"),
            meta.get("ce_type", "-"),
            f"{meta.get('dlq_original_topic')}[{meta.get('dlq_original_partition')}]"
            f"@{meta.get('dlq_original_offset')}",
            meta.get("dlq_reason", ""),
            meta.get("dlq_attempts", ""),
            meta.get("dlq_error", "")[:80],
        )
    console.print(table)


@dlq_app.command("replay")
def dlq_replay(
    group: str,
    bootstrap: BootstrapOption = "127.0.0.1:9092",
    event_id: Annotated[str | None, typer.Option("--event-id")] = None,
) -> None:
    """Re-deliver parked messages to their original topic."""
    replayed = asyncio.run(replay(bootstrap, group, event_id))
    typer.echo(f"replayed {len(replayed)} message(s) from {dead_letter_topic(group)}")
    if event_id is not None and not replayed:
        raise typer.Exit(1)


@app.command("tail")
def tail(
    topic: str,
    bootstrap: BootstrapOption = "127.0.0.1:9092",
    from_beginning: Annotated[bool, typer.Option("--from-beginning")] = False,
    limit: Annotated[int, typer.Option(help="Stop after this many messages (0: follow)")] = 0,
) -> None:
    """Print the events of a topic as they arrive."""

    async def run() -> None:
        consumer = AIOKafkaConsumer(
            topic,
            **client_options(),
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest" if from_beginning else "latest",
        )
        await consumer.start()
        seen = 0
        try:
            async for record in consumer:
                try:
                    envelope = decode(list(record.headers or ()), record.value)
                    line = (
                        f"{envelope.time.isoformat()} {envelope.type} subject={envelope.subject} "
                        f"id={envelope.id} {envelope.data.model_dump_json()}"
                    )
                except DecodeError as exc:
                    line = f"[undecodable p{record.partition}@{record.offset}] {exc}"
                console.print(line, markup=False, highlight=False)
                seen += 1
                if limit and seen >= limit:
                    break
        finally:
            await consumer.stop()

    asyncio.run(run())
