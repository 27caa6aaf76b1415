"""`make bench`: run every `bench/bench_*.py` module and record the figures.

Each module exposes `async def run() -> dict[str, object]`; figures are printed as they come,
then written to `bench/results/latest.json` and `bench/results/latest.md`. Each module starts
once the machine has gone quiet: the work one benchmark leaves behind on the stack (welcome
emails of the users it registered, sagas still settling) would otherwise land on the next one.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
QUIET_IDLE_FRACTION = 0.85
QUIET_WAIT_SECONDS = 90


def _cpu_times() -> tuple[int, int]:
    """(idle, total) jiffies of all CPUs since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields)


def wait_until_quiet() -> float:
    """Wait (up to QUIET_WAIT_SECONDS) for two consecutive seconds of a mostly idle machine;
    returns the seconds waited."""
    started = time.monotonic()
    quiet = 0
    before = _cpu_times()
    while quiet < 2 and time.monotonic() - started < QUIET_WAIT_SECONDS:
        time.sleep(1)
        after = _cpu_times()
        idle = (after[0] - before[0]) / max(1, after[1] - before[1])
        quiet = quiet + 1 if idle >= QUIET_IDLE_FRACTION else 0
        before = after
    return round(time.monotonic() - started, 1)


def _modules(selected: list[str]) -> list[str]:
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if selected:
        names = [n for n in names if any(s in n for s in selected)]
    return names


def main() -> int:
    selected = sys.argv[1:]
    report: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "benchmarks": {},
    }
    failed = False
    for name in _modules(selected):
        module = importlib.import_module(f"bench.{name}")
        print(f"== {name}", flush=True)
        waited = wait_until_quiet()
        started = time.monotonic()
        try:
            figures = asyncio.run(module.run())
        except Exception as exc:
            failed = True
            figures = {"error": repr(exc)}
        figures["seconds"] = round(time.monotonic() - started, 1)
        figures["waited_for_quiet_s"] = waited
        report["benchmarks"][name.removeprefix("bench_")] = figures
        for key, value in figures.items():
            print(f"   {key:<40} {value}", flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["| benchmark | figure | value |", "|---|---|---|"]
    for bench, figures in report["benchmarks"].items():
        lines += [f"| {bench} | {key} | {value} |" for key, value in figures.items()]
    (RESULTS / "latest.md").write_text("\n".join(lines) + "\n")
    print(f"written to {RESULTS / 'latest.json'} and latest.md")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
