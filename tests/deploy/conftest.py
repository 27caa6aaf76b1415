"""Fixtures of the deployment tests (helpers live in support.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .support import ROOT, run


@pytest.fixture(scope="session")
def helm() -> Path:
    """Helm v3.22.0 built from the Go module proxy by deploy/tools/install-helm.sh (cached)."""
    result = run(["bash", str(ROOT / "deploy" / "tools" / "install-helm.sh")])
    return Path(result.stdout.strip().splitlines()[-1])
