"""pip-audit of the locked dependencies (`make lint`), which never passes without auditing.

pip-audit reports "No known vulnerabilities found" and exits 0 even when it could not look a
single dependency up (each one merely listed as skipped). This runs it on `uv export` of the
lock (every package and group, pinned, workspace members left out: they are ours) and fails:

- with exit 1 when a locked dependency has a known vulnerability;
- with exit 2, loudly, when any dependency could not be audited: the vulnerability service
  pip-audit asks (`https://pypi.org/pypi/<name>/<version>/json`, or OSV) did not answer.

`SHOP_PIP_AUDIT_UNREACHABLE=warn` turns the second case into a printed warning (exit 0), for a
machine known to have no vulnerability service; known vulnerabilities still fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # fixed argument lists, no shell
        command, cwd=ROOT, capture_output=True, text=True, check=False
    )


def main() -> int:
    uv = shutil.which("uv") or str(BIN / "uv")
    with tempfile.TemporaryDirectory() as tmp:
        requirements, report = Path(tmp, "requirements.txt"), Path(tmp, "audit.json")
        export = _run(
            [
                uv,
                "export",
                "--frozen",
                "--no-hashes",
                "--no-emit-workspace",
                "--all-packages",
                "--all-groups",
                "--quiet",
                "--output-file",
                str(requirements),
            ]
        )
        if export.returncode != 0:
            print(f"pip-audit: `uv export` of the lock failed:\n{export.stderr}", file=sys.stderr)
            return 2
        audit = _run(
            [
                str(BIN / "pip-audit"),
                "--requirement",
                str(requirements),
                "--no-deps",  # the export pins every dependency already
                "--disable-pip",
                "--progress-spinner",
                "off",
                "--format",
                "json",
                "--output",
                str(report),
            ]
        )
        if not report.exists():
            print(f"pip-audit did not run:\n{audit.stderr}", file=sys.stderr)
            return 2
        dependencies = json.loads(report.read_text())["dependencies"]

    vulnerable = [d for d in dependencies if d.get("vulns")]
    skipped = [d for d in dependencies if "skip_reason" in d]
    for dependency in vulnerable:
        for vuln in dependency["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions", [])) or "no fixed version"
            print(
                f"VULNERABLE {dependency['name']} {dependency['version']}: {vuln['id']} "
                f"({', '.join(vuln.get('aliases', []))}) fixed in {fixed}",
                file=sys.stderr,
            )
    if skipped:
        level = os.environ.get("SHOP_PIP_AUDIT_UNREACHABLE", "fail")
        banner = "WARNING" if level == "warn" else "ERROR"
        print(
            f"{banner}: pip-audit could not audit {len(skipped)} of {len(dependencies)} locked "
            "dependencies: the vulnerability service did not answer from this machine.\n"
            f"  first: {skipped[0]['skip_reason']}\n"
            "  pip-audit looks each pinned version up at https://pypi.org/pypi/<name>/<version>/json "
            "(or at api.osv.dev with --vulnerability-service osv); those dependencies are NOT "
            "audited.",
            file=sys.stderr,
        )
    if vulnerable:
        return 1
    if skipped and os.environ.get("SHOP_PIP_AUDIT_UNREACHABLE") != "warn":
        return 2
    audited = len(dependencies) - len(skipped)
    if skipped:
        print(
            f"pip-audit: only {audited} of {len(dependencies)} locked dependencies audited "
            "(SHOP_PIP_AUDIT_UNREACHABLE=warn); no known vulnerabilities among those"
        )
    else:
        print(f"pip-audit: {audited} locked dependencies audited, no known vulnerabilities")
    return 0


if __name__ == "__main__":
    sys.exit(main())
