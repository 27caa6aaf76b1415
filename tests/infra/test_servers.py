"""Every server of the local stack answers for real (issue: platform foundation)."""

from __future__ import annotations

import asyncio
import uuid
from email.message import EmailMessage

import aiosmtplib
import asyncpg
import httpx
import stripe
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from redis.asyncio import Redis
from shopkit.kafka import ensure_topics, partitions_of
from shopkit.mongo import create_client
from shopkit.testing import ADMIN_DSN, KAFKA_BOOTSTRAP, kafka_namespace

from contracts import topics

SERVICE_DATABASES = {
    "auth",
    "users",
    "catalog",
    "inventory",
    "orders",
    "payments",
    "shipping",
    "notifications",
    "ferretdb",
}


async def test_postgres_has_one_database_per_service() -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        names = {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
        version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    assert names >= SERVICE_DATABASES
    assert int(version.split(".")[0]) >= 15


async def test_redis_round_trip() -> None:
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    key = f"test:infra:{uuid.uuid4()}"
    try:
        await redis.set(key, b"value", ex=30)
        assert await redis.get(key) == b"value"
    finally:
        await redis.delete(key)
        await redis.aclose()


async def test_kafka_produce_consume_round_trip_on_six_partition_topics() -> None:
    for topic in topics.ALL:
        assert len(await partitions_of(KAFKA_BOOTSTRAP, topic)) == topics.PARTITIONS
    topic = kafka_namespace() + "roundtrip"
    await ensure_topics(KAFKA_BOOTSTRAP, [topic])
    producer = AIOKafkaProducer(
        bootstrap_servers=KAFKA_BOOTSTRAP, enable_idempotence=True, acks="all"
    )
    await producer.start()
    try:
        sent = [f"message-{i}".encode() for i in range(10)]
        for value in sent:
            await producer.send_and_wait(topic, value=value, key=b"same-key")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=KAFKA_BOOTSTRAP,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list[bytes] = []
    try:
        while len(received) < len(sent):
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 20)
            for records in batch.values():
                received += [r.value for r in records if r.value is not None]
    finally:
        await consumer.stop()
    assert received == sent  # one key, one partition: order kept


async def test_mongodb_wire_server_through_async_pymongo() -> None:
    client = create_client("mongodb://127.0.0.1:27017/")
    try:
        collection = client["infra_test"][f"c{uuid.uuid4().hex[:8]}"]
        await collection.insert_many([{"sku": f"S-{i}", "price": i * 100} for i in range(5)])
        found = await collection.find({"price": {"$gte": 200}}).sort("price", -1).to_list(None)
        assert [d["sku"] for d in found] == ["S-4", "S-3", "S-2"]
        await collection.drop()
    finally:
        await client.close()


async def test_smtp_to_mailpit_arrives_in_its_api() -> None:
    recipient = f"infra-{uuid.uuid4().hex[:10]}@example.test"
    message = EmailMessage()
    message["From"] = "shop@example.test"
    message["To"] = recipient
    message["Subject"] = "infra check"
    message.set_content("hello from the infra test")
    await aiosmtplib.send(message, hostname="127.0.0.1", port=1025)
    async with httpx.AsyncClient(base_url="http://127.0.0.1:8025") as client:
        for _ in range(50):
            search = (
                await client.get("/api/v1/search", params={"query": f"to:{recipient}"})
            ).json()
            if search["messages_count"]:
                break
            await asyncio.sleep(0.1)
    assert search["messages_count"] == 1
    assert search["messages"][0]["Subject"] == "infra check"


def test_localstripe_through_the_stripe_sdk_honours_idempotency_keys() -> None:
    client = stripe.StripeClient("sk_test_local", base_addresses={"api": "http://127.0.0.1:8420"})
    key = f"infra-{uuid.uuid4()}"
    params: stripe.params.PaymentIntentCreateParams = {
        "amount": 1234,
        "currency": "brl",
        "payment_method_types": ["card"],
        "capture_method": "manual",
    }
    first = client.v1.payment_intents.create(params=params, options={"idempotency_key": key})
    again = client.v1.payment_intents.create(params=params, options={"idempotency_key": key})
    assert first.id == again.id
    assert first.amount == 1234
    fetched = client.v1.payment_intents.retrieve(first.id)
    assert fetched.id == first.id
    try:
        client.v1.payment_intents.create(
            params={**params, "amount": 999}, options={"idempotency_key": key}
        )
        raise AssertionError("a different body under the same key must be refused")
    except stripe.IdempotencyError:
        pass
