"""A consumer group's progress against its topics' ends, and the watermark built on it."""

from __future__ import annotations

from datetime import timedelta

from aiokafka import AIOKafkaConsumer
from contracts.types import utc_now
from shopkit.kafka import GroupProgress, create_producer, ensure_topics
from shopkit.testing import KAFKA_BOOTSTRAP, kafka_namespace
from shopkit.watermark import ConsumedWatermark

TOPICS = ("a.events", "b.events")


async def _append(topic: str, count: int) -> None:
    producer = create_producer(KAFKA_BOOTSTRAP, client_id="watermark-test")
    await producer.start()
    try:
        for n in range(count):
            await producer.send_and_wait(topic, value=b"{}", key=str(n).encode())
    finally:
        await producer.stop()


async def _commit_ends(group: str, progress: GroupProgress) -> None:
    """The group applies everything appended so far (commits every partition's end)."""
    ends = await progress.end_offsets()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=KAFKA_BOOTSTRAP, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(ends))
        await consumer.commit({tp: end for tp, end in ends.items() if end})
    finally:
        await consumer.stop()


async def test_the_watermark_follows_what_the_group_has_committed() -> None:
    namespace = kafka_namespace()
    topics = [namespace + t for t in TOPICS]
    await ensure_topics(KAFKA_BOOTSTRAP, topics)
    group = f"{namespace}tester"
    progress = GroupProgress(KAFKA_BOOTSTRAP, group=group, topics=topics)
    watermark = ConsumedWatermark(progress)
    try:
        # Nothing appended yet: nothing can be unread.
        start = utc_now()
        assert await watermark.advance(start) == start

        await _append(topics[0], 5)
        behind = start + timedelta(seconds=1)
        assert await watermark.advance(behind) == start  # five events not applied
        assert await watermark.advance(behind + timedelta(seconds=1)) == start
        assert not await progress.caught_up_with(await progress.end_offsets())

        await _commit_ends(group, progress)
        assert await progress.caught_up_with(await progress.end_offsets())
        # The newest snapshot taken before the commit is reached now, the next one as well.
        later = behind + timedelta(seconds=2)
        assert await watermark.advance(later) == later

        # Appended after `later`, unread: the watermark stays, and never goes back.
        await _append(topics[1], 3)
        assert await watermark.advance(later + timedelta(seconds=1)) == later
        assert await watermark.advance(later - timedelta(seconds=5)) == later
    finally:
        await watermark.close()


async def test_an_unreachable_broker_raises_and_leaves_the_watermark_where_it_was() -> None:
    progress = GroupProgress("127.0.0.1:9", group="nobody", topics=["x.events"], timeout=2)
    watermark = ConsumedWatermark(progress)
    try:
        try:
            await watermark.advance(utc_now())
        except Exception:
            pass
        else:
            raise AssertionError("an unreachable broker must not look caught up")
        assert watermark.value is None
    finally:
        await watermark.close()


async def test_a_trailing_group_keeps_a_bounded_number_of_snapshots() -> None:
    namespace = kafka_namespace()
    topic = namespace + "a.events"
    await ensure_topics(KAFKA_BOOTSTRAP, [topic])
    group = f"{namespace}tester"
    progress = GroupProgress(KAFKA_BOOTSTRAP, group=group, topics=[topic])
    watermark = ConsumedWatermark(progress, max_pending=3)
    try:
        await _append(topic, 1)
        start = utc_now()
        for n in range(10):
            assert await watermark.advance(start + timedelta(seconds=n)) is None
        await _commit_ends(group, progress)
        # The newest snapshot was kept up to date: catching up reaches the last round's time.
        assert await watermark.advance(start + timedelta(seconds=10)) == start + timedelta(
            seconds=10
        )
    finally:
        await watermark.close()
