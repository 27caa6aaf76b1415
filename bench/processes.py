"""What several benchmarks share: uvicorn processes on free ports and `wrk` closed-loop runs."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from gateway.testing import free_port

WRK_SECONDS = 6
WRK_CONNECTIONS = 32

_RPS = re.compile(r"Requests/sec:\s+([0-9.]+)")
_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")


@asynccontextmanager
async def uvicorn_process(module: str, env: dict[str, str]) -> AsyncIterator[str]:
    """A uvicorn process on a free port, stopped (by its own pid) on exit; yields its URL."""
    port = free_port()
    process = subprocess.Popen(  # noqa: ASYNC220 (started once, waited on below)
        [
            sys.executable,
            "-m",
            "uvicorn",
            module,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{module} exited during start-up")
                try:
                    if (await client.get(f"{url}/health/ready", timeout=2)).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{module} did not become ready")
                await asyncio.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 15)
        except subprocess.TimeoutExpired:
            process.kill()


async def wrk(url: str, headers: dict[str, str] | None = None) -> float:
    """Requests/s of a closed-loop `wrk` run; fails when any answer was not a success."""
    command = ["wrk", "-t2", f"-c{WRK_CONNECTIONS}", f"-d{WRK_SECONDS}s"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    process = await asyncio.create_subprocess_exec(
        *command, url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    text = out.decode()
    failures = _NON2XX.search(text)
    if failures and int(failures.group(1)):
        raise RuntimeError(f"{failures.group(1)} failed requests against {url}")
    match = _RPS.search(text)
    if match is None:
        raise RuntimeError(f"wrk gave no figure: {text[-300:]}")
    return float(match.group(1))
