"""How the benchmarks summarise a sample of latencies."""

from __future__ import annotations

from collections.abc import Iterable


def percentile(values: Iterable[float], fraction: float) -> float:
    """The sample's value at `fraction` by nearest rank (the lower one), rounded to 0.1."""
    ordered = sorted(values)
    return round(ordered[max(int(len(ordered) * fraction) - 1, 0)], 1)
