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

MAX_PARCEL_CONTENT_GRAMS = MAX_PARCEL_GRAMS - PACKAGING_GRAMS
"""Goods one parcel carries once its packaging is counted."""

MAX_PARCELS = 1_000
"""Most parcels one quote prices: 29.8 t of goods, a full truckload.

Past that an order is freight (a truck of its own), which these parcel tables do not price; a
quote for it could only mislead. It is about twice the heaviest cart of the seeded catalog (50
lines of 50 units of its heaviest products: 14.9 t, 502 parcels), and keeps any weight a quote
admits far inside the 32-bit column a shipment stores it in (the cart's own limits with the
catalog's heaviest allowed product, 1 t, reach 2.5e9 g: past that column's range).
"""

MAX_WEIGHT_GRAMS = MAX_PARCELS * MAX_PARCEL_CONTENT_GRAMS
"""Heaviest contents (packaging excluded) a quote is given for."""

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


@dataclass(frozen=True, slots=True)
class Parcels:
    """A shipment split into parcels: `full` of `MAX_PARCEL_GRAMS` each, then one lighter parcel
    of `last_grams` (0 when the contents fill the full ones exactly). Packaging included."""

    full: int
    last_grams: int

    @property
    def count(self) -> int:
        return self.full + (1 if self.last_grams else 0)

    @property
    def total_grams(self) -> int:
        return self.full * MAX_PARCEL_GRAMS + self.last_grams


def parcels_for(weight_grams: int) -> Parcels:
    """Split a shipment into parcels of at most `MAX_PARCEL_GRAMS` (packaging included).

    Arithmetic rather than a loop per parcel, so the cost does not grow with the weight.
    """
    if weight_grams <= 0:
        return Parcels(full=0, last_grams=PACKAGING_GRAMS)
    full, rest = divmod(weight_grams, MAX_PARCEL_CONTENT_GRAMS)
    return Parcels(full=full, last_grams=rest + PACKAGING_GRAMS if rest else 0)


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
        base = parcels.full * _band_price(rate, MAX_PARCEL_GRAMS)
        if parcels.last_grams:
            base += _band_price(rate, parcels.last_grams)
        # Integer centavos all the way: round half up on the zone surcharge.
        price = (base * ZONE_PERCENT[zone - 1] + 50) // 100
        rates.append(Rate(rate.carrier, rate.service, price, rate.days_by_zone[zone - 1]))
    return sorted(rates, key=lambda r: (r.price, r.estimated_days, r.carrier, r.service))
