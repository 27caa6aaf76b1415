"""Schemathesis against the merged OpenAPI document, through the running gateway, all checks.

Two runs with real tokens from the running auth service:

- as a customer, over every operation (admin operations then prove they answer 403), with the
  stateful phase following links between operations;
- as an administrator, over the admin operations, without the stateful phase and without
  values taken from earlier responses (`schemathesis-admin.toml`): either would hand the fuzzer
  real ids of other people's products, orders, coupons and stock on this shared stack, which it
  then rewrote (a deactivated product failed every later purchase of the suite).

Excluded are only the operations that destroy the run's own credentials (logout, password
change, account deletion); `test_credentials.py` covers them. The schema must be exact both
ways for zero failures: what it allows is accepted (or a 404/409 about the data), what it
refuses is a 4xx problem, and nothing is ever a 5xx.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import sys
from pathlib import Path

import pytest
from shop_cli.client import ROOT, Session, new_admin, new_customer

from .conftest import GATEWAY_HOST, GATEWAY_PORT, Product, relay_client
from .loopback import LoopbackRelay, fresh_loopback_ip

SCHEMA_URL = f"http://{GATEWAY_HOST}:{GATEWAY_PORT}/openapi.json"
EXAMPLES = int(os.environ.get("SHOP_SCHEMATHESIS_EXAMPLES", "30"))
"""Test cases per operation and phase; a run of both roles takes about two minutes."""

DESTROYS_OWN_CREDENTIALS = (
    "auth_logout_api_auth_logout_post",
    "auth_password_change_api_auth_password_change_post",
    "users_delete_me_api_users_me_delete",
)
ADMIN_OPERATIONS = (
    r"^/api/(coupons|orders/admin|notifications/admin/|payments/reviews"
    r"|payments/orders/\{order_id\}/refunds|inventory$|inventory/reservations/|inventory/\{sku\}"
    r"|products$|products/categories|products/seed|products/\{product_id\})"
)


ADMIN_CONFIG = Path(__file__).with_name("schemathesis-admin.toml")


async def _run(
    relay: LoopbackRelay, session: Session, extra: list[str], reports: Path, config: Path | None
) -> tuple[int, str]:
    seed = os.environ.get("SHOP_SCHEMATHESIS_SEED") or str(secrets.randbits(32))
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        *(("--config-file", str(config)) if config else ()),
        "run",
        SCHEMA_URL,
        "--url",
        relay.url,
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {session.access_token}",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        seed,
        # One worker: Hypothesis' lambda descriptions are not thread-safe under CPython 3.11
        # ("AST constructor recursion depth mismatch" errors with several).
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-color",
        "--report",
        "junit,ndjson",
        "--report-dir",
        str(reports),
        *(arg for op in DESTROYS_OWN_CREDENTIALS for arg in ("--exclude-operation-id", op)),
        *extra,
    ]
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=ROOT,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.security.st_hooks"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


def _summary(output: str) -> str:
    start = output.find("=== SUMMARY ===")
    start = output.rfind("\n", 0, start) if start >= 0 else max(0, len(output) - 3000)
    return output[start:]


async def _fuzz(role: str, extra: list[str], tmp_path: Path, config: Path | None = None) -> None:
    relay = LoopbackRelay(GATEWAY_HOST, GATEWAY_PORT, fresh_loopback_ip())
    await relay.start()
    try:
        async with relay_client(relay) as http:
            session = await (new_admin(http) if role == "admin" else new_customer(http))
        code, output = await _run(relay, session, extra, tmp_path, config)
    finally:
        await relay.stop()
    summary = _summary(output)
    print(f"\n--- schemathesis as {role} (from {relay.source_ip}) ---{summary}")
    assert "Selected:" in output, output[-3000:]
    assert code == 0, output[-20000:]
    assert re.search(r"\d+ generated, \d+ passed", output), summary


@pytest.mark.timeout(600)
async def test_schemathesis_as_a_customer(tmp_path: Path) -> None:
    await _fuzz("customer", [], tmp_path)


@pytest.mark.timeout(600)
async def test_schemathesis_as_an_admin(tmp_path: Path, admin: Session, product: Product) -> None:
    """... and the run's product, which the fuzzer could have read in the catalog listing, is
    exactly as it was: the fuzzer touches only what it made up. (Read as an admin: the
    gateway's edge cache serves no admin, so the answer is the catalog's own.)"""
    before = await admin.get(f"/api/products/{product.id}")
    await _fuzz(
        "admin",
        ["--include-path-regex", ADMIN_OPERATIONS, "--phases", "examples,coverage,fuzzing"],
        tmp_path,
        ADMIN_CONFIG,
    )
    assert await admin.get(f"/api/products/{product.id}") == before
