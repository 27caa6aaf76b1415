"""Carriers and their rate tables: price by zone (origin -> destination state) and weight band.

The tables are data, versioned with the code: a rate change is a reviewed commit, and a quote
signed under the old table stays valid until it expires (its price is inside the signature).
"""

from __future__ import annotations

from dataclasses import dataclass

from shopkit.cep import region_of

PACKAGING_GRAMS = 200
"""Box and filling added to every parcel."""

MAX_PARCEL_GRAMS = 30_000
"""Heavier orders ship as several parcels, each priced on its own."""

WEIGHT_BANDS = (300, 1_000, 2_000, 5_000, 10_000, 20_000, 30_000)
"""Upper bound (grams, inclusive) of each band the tables price."""

REGIONS: dict[str, str] = {
    **dict.fromkeys(("AC", "AP", "AM", "PA", "RO", "RR", "TO"), "N"),
    **dict.fromkeys(("AL", "BA", "CE", "MA", "PB", "PE", "PI", "RN", "SE"), "NE"),
    **dict.fromkeys(("DF", "GO", "MT", "MS"), "CO"),
    **dict.fromkeys(("ES", "MG", "RJ", "SP"), "SE"),
    **dict.fromkeys(("PR", "RS", "SC"), "S"),
}

# Zone 1: same state; 2: same region; 3: another region; 4: the North (remote, by river/air).
ZONE_PERCENT = (100, 135, 180, 240)


@dataclass(frozen=True, slots=True)
class ServiceRate:
    carrier: str
    service: str
    band_prices: tuple[int, ...]
    """Zone-1 price (centavos) per weight band."""
    days_by_zone: tuple[int, int, int, int]
    zones: frozenset[int] = frozenset({1, 2, 3, 4})
    """Zones the service delivers to."""


SERVICES: tuple[ServiceRate, ...] = (
    ServiceRate("correios", "PAC", (1990, 2390, 2890, 3690, 5290, 7990, 10990), (4, 6, 8, 12)),
    ServiceRate("correios", "SEDEX", (2690, 3290, 4190, 5690, 8490, 12990, 17990), (1, 2, 3, 5)),
    ServiceRate(
        "veloz",
        "EXPRESS",
        (3490, 3990, 4990, 6990, 9990, 14990, 19990),
        (1, 1, 2, 3),
        zones=frozenset({1, 2, 3}),
    ),
)

CARRIERS: frozenset[str] = frozenset(rate.carrier for rate in SERVICES)


@dataclass(frozen=True, slots=True)
class Rate:
    carrier: str
    service: str
    price: int
    estimated_days: int


def zone_between(origin_cep: str, destination_cep: str) -> int:
    origin = region_of(origin_cep).state
    destination = region_of(destination_cep).state
    if origin == destination:
        return 1
    if REGIONS[origin] == REGIONS[destination]:
        return 2
    if REGIONS[destination] == "N":
        return 4
    return 3


def parcels_for(weight_grams: int) -> list[int]:
    """Split a shipment into parcels of at most `MAX_PARCEL_GRAMS` (packaging included)."""
    if weight_grams <= 0:
        return [PACKAGING_GRAMS]
    parcels: list[int] = []
    remaining = weight_grams
    while remaining > 0:
        content = min(remaining, MAX_PARCEL_GRAMS - PACKAGING_GRAMS)
        parcels.append(content + PACKAGING_GRAMS)
        remaining -= content
    return parcels


def _band_price(rate: ServiceRate, parcel_grams: int) -> int:
    for limit, price in zip(WEIGHT_BANDS, rate.band_prices, strict=True):
        if parcel_grams <= limit:
            return price
    raise ValueError(f"parcel of {parcel_grams} g above the heaviest band")


def rates_for(*, origin_cep: str, destination_cep: str, weight_grams: int) -> list[Rate]:
    """Every service that delivers to the destination, cheapest first."""
    zone = zone_between(origin_cep, destination_cep)
    parcels = parcels_for(weight_grams)
    rates = []
    for rate in SERVICES:
        if zone not in rate.zones:
            continue
        base = sum(_band_price(rate, parcel) for parcel in parcels)
        # Integer centavos all the way: round half up on the zone surcharge.
        price = (base * ZONE_PERCENT[zone - 1] + 50) // 100
        rates.append(Rate(rate.carrier, rate.service, price, rate.days_by_zone[zone - 1]))
    return sorted(rates, key=lambda r: (r.price, r.estimated_days, r.carrier, r.service))
