"""The stack scripts: idempotent `up`, one-line prerequisite failures, data kept across restarts."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from shopkit.kafka import ensure_topics
from shopkit.testing import KAFKA_BOOTSTRAP, kafka_namespace

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "infra/local/stack.sh"


def _stack(
    *args: str, env: dict[str, str] | None = None, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(STACK), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_taken_port_fails_with_one_line_naming_it(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = _stack(
            "up", "redis", env={"SHOP_STATE_DIR": str(tmp_path), "SHOP_REDIS_PORT": str(port)}
        )
    assert result.returncode != 0
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1, result.stderr
    assert f"port {port} needed by redis is already taken" in errors[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_missing_java_fails_with_one_line_naming_it(tmp_path: Path) -> None:
    result = _stack(
        "up",
        "kafka",
        env={
            "SHOP_STATE_DIR": str(tmp_path),
            "JAVA_HOME": str(tmp_path / "no-jdk"),
            "SHOP_KAFKA_PORT": str(_free_port()),
            "SHOP_KAFKA_CONTROLLER_PORT": str(_free_port()),
            "SHOP_KAFKA_FAULTS_PORT": str(_free_port()),
        },
    )
    assert result.returncode != 0
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1, result.stderr
    assert "Java 17+ is required" in errors[0] and "not found" in errors[0]


def test_second_up_is_a_warm_no_op_that_reports_what_runs() -> None:
    result = _stack("up")
    assert result.returncode == 0, result.stderr
    assert "warm start: 0 process(es) started" in result.stdout
    for component in (
        "postgres",
        "redis",
        "kafka",
        "ferretdb",
        "mailpit",
        "localstripe",
        "gateway",
    ):
        assert any(
            line.strip().startswith(component) and "already running" in line
            for line in result.stdout.splitlines()
        ), component
    status = _stack("status")
    assert status.returncode == 0
    assert "stopped" not in status.stdout


async def test_down_then_up_keeps_kafka_messages_and_comes_back_healthy() -> None:
    topic = kafka_namespace() + "persistence"
    await ensure_topics(KAFKA_BOOTSTRAP, [topic])
    producer = AIOKafkaProducer(
        bootstrap_servers=KAFKA_BOOTSTRAP, enable_idempotence=True, acks="all"
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"written before the restart", key=b"k")
    finally:
        await producer.stop()

    down = await asyncio.to_thread(_stack, "down")
    assert down.returncode == 0, down.stderr
    assert "stopped" in _stack("status").stdout
    up = await asyncio.to_thread(_stack, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "cold start" in up.stdout and "services    ready" in up.stdout

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=KAFKA_BOOTSTRAP,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    values: list[bytes | None] = []
    await consumer.start()
    try:
        # A broker just back from a cold start may answer its first fetches empty for a while.
        deadline = time.monotonic() + 60
        while not values and time.monotonic() < deadline:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=5000), 30)
            values += [r.value for records in batch.values() for r in records]
    finally:
        await consumer.stop()
    assert values == [b"written before the restart"]
