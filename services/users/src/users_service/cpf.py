"""CPF (Cadastro de Pessoas Físicas): format and the two mod-11 check digits."""

from __future__ import annotations

import re

_FORMATTED = re.compile(r"^\s*(\d{3})\.?(\d{3})\.?(\d{3})-?(\d{2})\s*$")


class InvalidCpfError(ValueError):
    pass


def _check_digit(digits: str) -> int:
    weight = len(digits) + 1
    total = sum(int(d) * (weight - i) for i, d in enumerate(digits))
    remainder = total % 11
    return 0 if remainder < 2 else 11 - remainder


def normalize_cpf(value: str) -> str:
    """The eleven digits of a valid CPF (`123.456.789-09` or `12345678909`)."""
    match = _FORMATTED.match(value)
    if match is None:
        raise InvalidCpfError("a CPF has eleven digits, written 123.456.789-09 or 12345678909")
    digits = "".join(match.groups())
    if digits == digits[0] * 11:
        raise InvalidCpfError("a CPF cannot repeat one digit eleven times")
    first = _check_digit(digits[:9])
    second = _check_digit(digits[:9] + str(first))
    if digits[9:] != f"{first}{second}":
        raise InvalidCpfError("CPF check digits do not match")
    return digits


def format_cpf(digits: str) -> str:
    return f"{digits[:3]}.{digits[3:6]}.{digits[6:9]}-{digits[9:]}"
