"""The benchmarks stay runnable: every module imports, and the backbone benchmark runs end to
end at a small size against the real broker and database (figures are printed by `make bench`,
never asserted on: only that each was produced)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from bench import bench_backbone

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"


def test_every_benchmark_module_imports_and_has_a_run() -> None:
    names = sorted(p.stem for p in BENCH_DIR.glob("bench_*.py"))
    assert len(names) >= 8
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        assert callable(getattr(module, "run", None)), name


async def test_backbone_benchmark_runs_at_a_small_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_backbone, "EVENTS", 300)
    monkeypatch.setattr(bench_backbone, "RATE", 50)
    monkeypatch.setattr(bench_backbone, "RATE_SECONDS", 2)

    figures = await bench_backbone.run()

    for name in (
        "relay_events_per_s",
        "consumer_with_inbox_events_per_s",
        "consumer_with_inbox_one_statement_per_event_events_per_s",
        "latency_rate_events_per_s",
        "latency_p50_ms",
        "latency_p99_ms",
        "latency_from_creation_p99_ms",
    ):
        value = figures[name]
        assert isinstance(value, int | float) and value > 0, (name, value)
    assert figures["latency_p50_ms"] <= figures["latency_p99_ms"]  # type: ignore[operator]
    # Every event written at the fixed rate was handled and measured once.
    assert len(bench_backbone.latencies) == 50 * 2  # 2 writers x 25/s x 2 s
    assert len(bench_backbone.handled_at) == 50 * 2  # each matched to its producer's commit
