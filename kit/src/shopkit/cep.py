"""Brazilian CEP rules: format, normalisation and the offline range table (CEP -> state/city).

Shared by shipping (quotes, CEP lookup, labels) and users (address validation), so both
services validate CEPs by the same rules without one service importing another. The range table
comes from the Correios CEP allocation (first five digits per state, plus the main city ranges),
so lookups work with no network at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CEP = re.compile(r"^\s*([0-9]{5})-?([0-9]{3})\s*$")


class InvalidCepError(ValueError):
    """Not a CEP: wrong format, or outside every range the Correios allocate."""


@dataclass(frozen=True, slots=True)
class CepRegion:
    state: str
    city: str | None
    """Set when the CEP falls in a city's own range (capitals and large cities)."""


# (first prefix, last prefix, state), five-digit prefixes, inclusive.
STATE_RANGES: tuple[tuple[int, int, str], ...] = (
    (1000, 19999, "SP"),
    (20000, 28999, "RJ"),
    (29000, 29999, "ES"),
    (30000, 39999, "MG"),
    (40000, 48999, "BA"),
    (49000, 49999, "SE"),
    (50000, 56999, "PE"),
    (57000, 57999, "AL"),
    (58000, 58999, "PB"),
    (59000, 59999, "RN"),
    (60000, 63999, "CE"),
    (64000, 64999, "PI"),
    (65000, 65999, "MA"),
    (66000, 68899, "PA"),
    (68900, 68999, "AP"),
    (69000, 69299, "AM"),
    (69300, 69399, "RR"),
    (69400, 69899, "AM"),
    (69900, 69999, "AC"),
    (70000, 72799, "DF"),
    (72800, 72999, "GO"),
    (73000, 73699, "DF"),
    (73700, 76799, "GO"),
    (76800, 76999, "RO"),
    (77000, 77999, "TO"),
    (78000, 78899, "MT"),
    (79000, 79999, "MS"),
    (80000, 87999, "PR"),
    (88000, 89999, "SC"),
    (90000, 99999, "RS"),
)

# (first prefix, last prefix, city), checked before the state table.
CITY_RANGES: tuple[tuple[int, int, str], ...] = (
    (1000, 5999, "São Paulo"),
    (8000, 8499, "São Paulo"),
    (13000, 13139, "Campinas"),
    (20000, 23799, "Rio de Janeiro"),
    (29000, 29099, "Vitória"),
    (30000, 31999, "Belo Horizonte"),
    (40000, 42599, "Salvador"),
    (49000, 49098, "Aracaju"),
    (50000, 52999, "Recife"),
    (57000, 57099, "Maceió"),
    (58000, 58099, "João Pessoa"),
    (59000, 59099, "Natal"),
    (60000, 61599, "Fortaleza"),
    (64000, 64099, "Teresina"),
    (65000, 65109, "São Luís"),
    (66000, 66999, "Belém"),
    (68900, 68911, "Macapá"),
    (69000, 69099, "Manaus"),
    (69300, 69339, "Boa Vista"),
    (69900, 69923, "Rio Branco"),
    (70000, 72799, "Brasília"),
    (74000, 74899, "Goiânia"),
    (76800, 76834, "Porto Velho"),
    (77000, 77249, "Palmas"),
    (78000, 78109, "Cuiabá"),
    (79000, 79129, "Campo Grande"),
    (80000, 82999, "Curitiba"),
    (88000, 88099, "Florianópolis"),
    (90000, 91999, "Porto Alegre"),
)

STATES: frozenset[str] = frozenset(state for _, _, state in STATE_RANGES)


def normalize_cep(value: str) -> str:
    """The eight digits of a CEP written `01310-100` or `01310100`; raises `InvalidCepError`."""
    match = _CEP.match(value)
    if match is None:
        raise InvalidCepError("a CEP has eight digits, written 01310-100 or 01310100")
    cep = match.group(1) + match.group(2)
    region_of(cep)  # also rejects 00000-000 and other unallocated prefixes
    return cep


def region_of(cep: str) -> CepRegion:
    """The state (and, inside a known city range, the city) a normalised CEP belongs to."""
    if len(cep) != 8 or not cep.isdigit():
        raise InvalidCepError("a normalised CEP has exactly eight digits")
    prefix = int(cep[:5])
    state = next((s for first, last, s in STATE_RANGES if first <= prefix <= last), None)
    if state is None:
        raise InvalidCepError(f"CEP {format_cep(cep)} is outside every Correios range")
    city = next((c for first, last, c in CITY_RANGES if first <= prefix <= last), None)
    return CepRegion(state=state, city=city)


def format_cep(cep: str) -> str:
    return f"{cep[:5]}-{cep[5:]}" if len(cep) == 8 else cep


def matches_state(cep: str, state: str) -> bool:
    """True when a normalised CEP belongs to `state` (two-letter code)."""
    return region_of(cep).state == state.upper()
