"""Schemathesis hooks: how to generate the platform's documented string formats.

Some request values are documented with a named `format` because no pattern can express their
rule (a checksum, a policy over a word list). Schemathesis generates a string format it does
not know from the pattern alone, which produces values the schema itself calls invalid; these
strategies produce values of the documented format, so that "schema-valid" means valid.

Loaded by the schemathesis CLI through `SCHEMATHESIS_HOOKS=tests.security.st_hooks`.
"""

from __future__ import annotations

import schemathesis
from hypothesis import strategies as st


def _check_digit(digits: str) -> int:
    weight = len(digits) + 1
    remainder = sum(int(d) * (weight - i) for i, d in enumerate(digits)) % 11
    return 0 if remainder < 2 else 11 - remainder


@st.composite
def cpfs(draw: st.DrawFn) -> str:
    """A CPF with valid check digits, bare or punctuated (`123.456.789-09`)."""
    base = draw(st.text("0123456789", min_size=9, max_size=9).filter(lambda d: len(set(d)) > 1))
    first = _check_digit(base)
    digits = f"{base}{first}{_check_digit(base + str(first))}"
    if draw(st.booleans()):
        return digits
    return f"{digits[:3]}.{digits[3:6]}.{digits[6:9]}-{digits[9:]}"


schemathesis.openapi.format("cpf", cpfs())
