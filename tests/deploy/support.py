"""Helpers of the deployment tests: repository paths and running tools.

These tests need no cluster, no Docker engine and no cloud account. Tools that are not Python
dev dependencies (Helm, checkov) are installed on first use from package registries into the
tools cache; when that fails the test fails with the installer's reason, never skips.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "shop"
ENVIRONMENTS = ("staging", "production")


def run(
    args: list[str], *, cwd: Path = ROOT, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """Run a tool; on failure, fail the test with its output (never a silent skip)."""
    result = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} exited {result.returncode}\n--- stdout\n{result.stdout[-4000:]}"
            f"\n--- stderr\n{result.stderr[-4000:]}",
            pytrace=False,
        )
    return result
