"""The subset of `.dockerignore` semantics the build context needs: what `docker build` sends.

Docker matches each pattern (Go `filepath.Match` plus `**`) against a path and against every
parent folder of it; the last matching pattern decides, and `!` re-includes.
"""

from __future__ import annotations

import re
from pathlib import Path


def _regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            if pattern.startswith("/", i):
                out = out[:-2] + "(?:.*/)?"
                i += 1
            continue
        char = pattern[i]
        out += "[^/]*" if char == "*" else "[^/]" if char == "?" else re.escape(char)
        i += 1
    return re.compile(f"^{out}$")


def load(path: Path) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:] if negate else line
        pattern = pattern.strip("/") or "**"
        rules.append((negate, _regex(pattern)))
    return rules


def included(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether a file (path relative to the context, `/`-separated) is sent to the builder."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negate, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            excluded = not negate
    return not excluded
