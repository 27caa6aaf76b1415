"""Helpers of the deployment tests: repository paths and running tools.

These tests need no cluster, no Docker engine and no cloud account. Tools that are not Python
dev dependencies (Helm, checkov) are installed on first use from package registries into the
tools cache; when that fails the test fails with the installer's reason, never skips.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from shopkit.settings import SERVICE_PORTS

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "shop"
ENVIRONMENTS = ("staging", "production")
KUBERNETES_VERSION = "1.37.0"
NAMESPACE = "shop"
COMPONENTS = (*SERVICE_PORTS, "cli")
# Read by the image's entry point (deploy/docker/entrypoint.sh) and by asyncpg (libpq variables),
# not by the settings classes.
ENTRYPOINT_AND_LIBPQ = {"SHOP_SERVICE", "PORT", "PGSSLMODE", "PGSSLROOTCERT"}


def fake_digest(component: str) -> str:
    """A well-formed digest, as the deploy workflow passes the pushed images' digests."""
    return "sha256:" + hashlib.sha256(component.encode()).hexdigest()


def template_args(helm: Path, environment: str, *extra: str) -> list[str]:
    return [
        str(helm),
        "template",
        "shop",
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBERNETES_VERSION,
        "-f",
        str(CHART / f"values-{environment}.yaml"),
        "--set-json",
        "global.imageDigests=" + json.dumps({c: fake_digest(c) for c in COMPONENTS}),
        *extra,
    ]


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


def uv() -> str:
    """The uv executable (installed by `make install`); its absence fails with the reason."""
    found = shutil.which("uv")
    if found is None:
        pytest.fail("uv is not on PATH (make install puts it there)", pytrace=False)
    return found
