"""The outbox relay: publishes committed outbox rows to Kafka, in order, forever.

* One active relay per service database: leadership is a PostgreSQL session advisory lock held
  on the relay's own connection. Other replicas stand by and take over when that connection
  ends (crash, kill, network loss), so several replicas never publish concurrently.
* Per-aggregate order: a round publishes at most one pending row per key, so an event is sent
  only after every earlier event of its aggregate was acknowledged by the broker.
* At-least-once: a row is marked sent only after the broker acknowledged it (`acks=all`,
  idempotent producer). A crash between the ack and the mark re-sends the row; consumers drop
  the duplicate by event id (inbox).
* Retries forever with capped exponential backoff; never gives up on a row. A row the broker
  will not take holds back only its own aggregate (or its topic), with a backoff of its own;
  every other aggregate goes on (`shopkit.publishing`).

Runs in-process as a background task of each service (`create_service`) or standalone:
`python -m shopkit.relay --dsn postgresql://... --service orders`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from contracts import topics
from shopkit.kafka import create_producer, ensure_topics
from shopkit.loops import close_quietly, sleep_or_stop
from shopkit.metrics import OUTBOX_BACKLOG, OUTBOX_FAILURES, OUTBOX_PUBLISHED
from shopkit.publishing import Holds, Outgoing, PublishError, Stall, send_each

log = logging.getLogger(__name__)

ProducerFactory = Callable[[], AIOKafkaProducer]


def asyncpg_dsn(url: str) -> str:
    """A libpq-style DSN from an SQLAlchemy URL (`postgresql+asyncpg://` -> `postgresql://`)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def advisory_lock_key(table: str) -> int:
    """A stable 63-bit key naming "the relay of this outbox" within one database."""
    return zlib.crc32(f"shopkit.outbox-relay:{table}".encode()) & 0x7FFFFFFF


@dataclass
class RelayConfig:
    service: str
    dsn: str
    bootstrap: str
    table: str = "outbox"
    topic_namespace: str = ""
    """Prefix added to every topic at publish time (isolated test runs)."""
    batch_size: int = 1000
    idle_poll_seconds: float = 1.0
    standby_poll_seconds: float = 2.0
    max_backoff_seconds: float = 5.0
    retention: timedelta = timedelta(days=1)
    inbox_table: str | None = "inbox"
    """The service's inbox, purged by the active relay too (None: nothing to purge)."""
    inbox_retention: timedelta = timedelta(days=7)
    """How long consumed event ids are kept: longer than any redelivery can arrive."""
    purge_every_seconds: float = 60.0
    reconnect_after_seconds: float = 60.0
    """Sends failing with nothing acknowledged for this long start a new producer."""
    keepalive_seconds: int = 30
    """TCP keepalive of the leader's connection, server side: a leader whose host vanished
    (no FIN ever arrives) is noticed and its lock freed in about 2x this, instead of after the
    server's default of two hours and more, during which no replica could publish."""
    statement_timeout_seconds: float = 60.0
    """The leader's own wait for an answer: a half-open connection fails, and is replaced."""


class OutboxRelay:
    def __init__(
        self, config: RelayConfig, producer_factory: ProducerFactory | None = None
    ) -> None:
        self.config = config
        self._producer_factory = producer_factory or (
            lambda: create_producer(config.bootstrap, client_id=f"{config.service}-relay")
        )
        self._wake = asyncio.Event()
        self.is_leader = False
        self.published = 0
        self.holds = Holds(max_seconds=config.max_backoff_seconds)
        self._stall = Stall(config.reconnect_after_seconds)
        self._notifications = 0
        self._no_other_heads_at: int | None = None
        """`_notifications` when the read past a busy aggregate last found nothing: no other
        head can exist until another commit notifies."""
        # Built once: every round runs them. The second also serves the read past a busy
        # aggregate, with its keys among those left out.
        columns = f"SELECT seq, topic, key, headers, payload FROM {config.table} "  # noqa: S608
        self._pending = f"{columns}WHERE sent_at IS NULL ORDER BY seq LIMIT $1"
        self._pending_except = (
            f"{columns}WHERE sent_at IS NULL AND key <> ALL($2::text[]) "
            "AND topic <> ALL($3::text[]) ORDER BY seq LIMIT $1"
        )

    @property
    def channel(self) -> str:
        return f"{self.config.table}_pending"

    async def run(self, stop: asyncio.Event) -> None:
        """Lead or stand by until `stop` is set; every failure is retried with backoff."""
        backoff = 0.2
        while not stop.is_set():
            published = self.published
            try:
                await self._lead(stop)
                backoff = 0.2
            except (
                TimeoutError,
                OSError,
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
                PublishError,
            ) as exc:
                OUTBOX_FAILURES.labels(self.config.service).inc()
                log.warning(
                    "outbox relay interrupted, retrying",
                    extra={"error": repr(exc), "retry_in": backoff},
                )
            except Exception:
                OUTBOX_FAILURES.labels(self.config.service).inc()
                log.exception("outbox relay failed unexpectedly, retrying")
            finally:
                self.is_leader = False
            if self.published > published:
                backoff = 0.2  # it led and published: a new failure, not the same one again
            await sleep_or_stop(stop, backoff)
            backoff = min(backoff * 2, self.config.max_backoff_seconds)

    async def _lead(self, stop: asyncio.Event) -> None:
        keepalive = self.config.keepalive_seconds
        conn: asyncpg.Connection = await asyncpg.connect(
            self.config.dsn,
            timeout=10,
            command_timeout=self.config.statement_timeout_seconds,
            server_settings={
                "tcp_keepalives_idle": str(keepalive),
                "tcp_keepalives_interval": str(max(keepalive // 3, 1)),
                "tcp_keepalives_count": "3",
                "tcp_user_timeout": str(keepalive * 2 * 1000),
            },
        )
        producer: AIOKafkaProducer | None = None
        try:
            key = advisory_lock_key(self.config.table)
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                if await sleep_or_stop(stop, self.config.standby_poll_seconds):
                    return
            self.is_leader = True
            log.info("outbox relay is the active publisher", extra={"service": self.config.service})
            # Marking rows sent need not wait for the disk: a mark lost in a crash only
            # publishes the row again, which consumers' inboxes already absorb.
            await conn.execute("SET synchronous_commit = off")
            await conn.add_listener(self.channel, self._on_notify)
            if self.config.topic_namespace:
                await ensure_topics(
                    self.config.bootstrap, [self.config.topic_namespace + t for t in topics.ALL]
                )
            producer = self._producer_factory()
            await asyncio.wait_for(producer.start(), 30)
            last_purge = 0.0
            loop = asyncio.get_running_loop()
            while not stop.is_set():
                self._wake.clear()
                more = await self._round(conn, producer)
                if loop.time() - last_purge > self.config.purge_every_seconds:
                    await self._purge_and_measure(conn)
                    last_purge = loop.time()
                if not more:
                    # Drained: a commit since this round's read has already set the wake-up
                    # (cleared before the read), so the wait ends at once. Reading again
                    # straight away would find nothing on most rounds.
                    await self._wait_for_work(stop, self.holds.seconds_to_next_release())
        finally:
            if producer is not None:
                await close_quietly(producer.stop())
            await close_quietly(conn.close(timeout=5))

    def _on_notify(self, *_: Any) -> None:
        self._notifications += 1
        self._wake.set()

    async def _wait_for_work(self, stop: asyncio.Event, release_in: float | None) -> None:
        """Until a commit wakes the relay, a held event may be tried again, or the idle poll."""
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        timeout = self.config.idle_poll_seconds
        if release_in is not None:
            timeout = min(timeout, release_in)
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _round(self, conn: asyncpg.Connection, producer: AIOKafkaProducer) -> bool:
        """Publish up to one pending row per aggregate; True when more rows wait.

        Rows of held keys and topics (their last send failed) are left out of the read, so
        however many of them wait, the rows of every other aggregate still fill the batch."""
        held_keys, held_topics = self.holds.held_keys(), self.holds.held_topics()
        if held_keys or held_topics:
            rows = await conn.fetch(
                self._pending_except, self.config.batch_size, held_keys, held_topics
            )
        else:
            rows = await conn.fetch(self._pending, self.config.batch_size)
        if not rows:
            return False
        chosen = []
        seen_keys: set[str] = set()
        for row in rows:
            if row["key"] in seen_keys:
                continue  # waits until the earlier event of this aggregate is acknowledged
            seen_keys.add(row["key"])
            chosen.append(row)
        if (
            len(rows) == self.config.batch_size
            and len(chosen) < len(rows)
            and self._no_other_heads_at != self._notifications
        ):
            # A full batch with repeated keys: one busy aggregate (a best-selling sku after an
            # outage) can fill it alone, and everything committed after its backlog would wait
            # for all of it. The heads of the other aggregates are read past it. From the start
            # again, not from the batch's last row: a row committed since the first read may be
            # older than that row, and is its aggregate's head. When it finds none, it is not
            # read again until a commit notifies: draining one aggregate alone must not rescan
            # its whole backlog every round.
            notifications = self._notifications
            others = await conn.fetch(
                self._pending_except, self.config.batch_size, [*seen_keys, *held_keys], held_topics
            )
            if not others:
                self._no_other_heads_at = notifications
            for row in others:
                if row["key"] not in seen_keys:
                    seen_keys.add(row["key"])
                    chosen.append(row)
        messages = [
            Outgoing(
                topic=row["topic"],
                key=row["key"],
                value=bytes(row["payload"]),
                headers=[
                    (name, value.encode()) for name, value in _headers(row["headers"]).items()
                ],
            )
            for row in chosen
        ]
        outcomes = await send_each(producer, messages, namespace=self.config.topic_namespace)
        acked: list[int] = []
        failed: list[tuple[int, str]] = []
        for row, message, outcome in zip(chosen, messages, outcomes, strict=True):
            self.holds.record(message, outcome)
            if outcome is None:
                acked.append(row["seq"])
            elif outcome.attempted:
                failed.append((row["seq"], repr(outcome.error)[:1000]))
        if acked:
            await conn.execute(
                f"UPDATE {self.config.table} SET sent_at = now(), attempts = attempts + 1 "  # noqa: S608
                "WHERE seq = ANY($1::bigint[])",
                acked,
            )
            self.published += len(acked)
            OUTBOX_PUBLISHED.labels(self.config.service).inc(len(acked))
        if failed:
            await conn.execute(
                f"UPDATE {self.config.table} AS o SET attempts = o.attempts + 1, "  # noqa: S608
                "last_error = f.error FROM unnest($1::bigint[], $2::text[]) AS f(seq, error) "
                "WHERE o.seq = f.seq",
                [seq for seq, _ in failed],
                [error for _, error in failed],
            )
            OUTBOX_FAILURES.labels(self.config.service).inc()
            log.warning(
                "outbox events not acknowledged; their aggregates wait, the others go on",
                extra={"service": self.config.service, "count": len(failed), "error": failed[0][1]},
            )
        # Nothing acknowledged for too long raises: the relay reconnects with a new producer.
        self._stall.note_round(acknowledged=bool(acked), failed=bool(failed))
        # Only a round that published can have made room: a round of failures waits for the
        # first hold to pass (or a new commit) rather than reading the same rows again.
        return bool(acked) and (len(rows) == self.config.batch_size or len(chosen) < len(rows))

    async def _purge_and_measure(self, conn: asyncpg.Connection) -> None:
        await _purge(conn, self.config.table, "sent_at", self.config.retention)
        if self.config.inbox_table:
            await _purge(conn, self.config.inbox_table, "received_at", self.config.inbox_retention)
        OUTBOX_BACKLOG.labels(self.config.service).set(await backlog(conn, self.config.table))


PURGE_BATCH = 10_000
PURGE_BATCHES_PER_ROUND = 10
"""A purge deletes in short statements, at most this many per round, the rest in later rounds:
one DELETE of a table grown large (a long run, a longer retention) would outlast the leader's
statement timeout and be retried, and fail, on every lead, with publishing stalled behind it."""


async def _purge(conn: asyncpg.Connection, table: str, column: str, keep: timedelta) -> None:
    statement = (
        f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("  # noqa: S608
        f"SELECT ctid FROM {table} WHERE {column} < now() - $1::interval LIMIT {PURGE_BATCH}))"
    )
    for _ in range(PURGE_BATCHES_PER_ROUND):
        status = await conn.execute(statement, keep)
        if int(status.rsplit(" ", 1)[-1]) < PURGE_BATCH:
            return


def _headers(value: Any) -> dict[str, str]:
    # asyncpg returns jsonb as text unless a codec is registered.
    return dict(json.loads(value) if isinstance(value, str) else value)


async def backlog(conn: asyncpg.Connection, table: str = "outbox") -> int:
    """Rows committed but not yet acknowledged by Kafka."""
    count = await conn.fetchval(f"SELECT count(*) FROM {table} WHERE sent_at IS NULL")  # noqa: S608
    return int(count)


def main() -> None:
    import signal

    from shopkit.logs import configure_logging

    parser = argparse.ArgumentParser(prog="python -m shopkit.relay", description=__doc__)
    parser.add_argument("--dsn", required=True, help="postgresql://user:pass@host/db")
    parser.add_argument("--service", required=True)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--topic-namespace", default="")
    args = parser.parse_args()
    configure_logging(f"{args.service}-relay")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        relay = OutboxRelay(
            RelayConfig(
                service=args.service,
                dsn=asyncpg_dsn(args.dsn),
                bootstrap=args.bootstrap,
                batch_size=args.batch_size,
                topic_namespace=args.topic_namespace,
            )
        )
        await relay.run(stop)

    asyncio.run(run())


if __name__ == "__main__":
    main()
