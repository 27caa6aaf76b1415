"""A probe consumer in its own process that kills itself with SIGKILL right after its database
transaction committed and before the Kafka offset commit: the worst moment to crash.

    python kit/tests/crashing_consumer.py DATABASE_URL NAMESPACE GROUP
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from aiokafka import TopicPartition
from shopkit.consumer import ConsumerConfig, EventConsumer
from shopkit.db import create_engine, create_sessionmaker
from shopkit.inbox import PostgresInbox
from shopkit.testing import KAFKA_BOOTSTRAP

from kit.tests.probe import handlers, messaging


class CrashBeforeOffsetCommit(EventConsumer[object]):
    async def _commit(self, tp: TopicPartition, offset: int) -> None:
        print(f"effect committed for offset {offset}; dying before the offset commit", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


async def main(url: str, namespace: str, group: str) -> None:
    engine = create_engine(url, pool_size=2)
    consumer = CrashBeforeOffsetCommit(
        ConsumerConfig(
            service="kittest", group_id=group, bootstrap=KAFKA_BOOTSTRAP, topic_namespace=namespace
        ),
        handlers,  # type: ignore[arg-type]
        PostgresInbox(create_sessionmaker(engine), messaging),
    )
    await consumer.run(asyncio.Event())


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
