"""Rate tables and CEP rules (pure functions)."""

from __future__ import annotations

import pytest
from shipping_service import rates
from shipping_service.rates import Rate
from shipping_service.service.shipments import new_tracking_number, s10_check_digit
from shopkit import cep


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [("01310-100", "01310100"), ("01310100", "01310100"), (" 90010-000 ", "90010000")],
)
def test_cep_is_normalized(raw: str, normalized: str) -> None:
    assert cep.normalize_cep(raw) == normalized


@pytest.mark.parametrize("raw", ["", "1310-100", "013101000", "abcde-fgh", "00000-000", "00999999"])
def test_invalid_cep_is_refused(raw: str) -> None:
    with pytest.raises(cep.InvalidCepError):
        cep.normalize_cep(raw)


def test_cep_regions() -> None:
    assert cep.region_of("01310100") == cep.CepRegion("SP", "São Paulo")
    assert cep.region_of("20040002").state == "RJ"
    assert cep.region_of("69010000").state == "AM"
    assert cep.region_of("17500000").city is None  # inland SP: the state is still known
    assert cep.matches_state("88010000", "sc")
    assert not cep.matches_state("88010000", "PR")


def test_every_state_has_a_range() -> None:
    assert len(cep.STATES) == 27  # 26 states and the Federal District


def test_zones_and_services() -> None:
    sp, rj, manaus = "01310100", "20040002", "69010000"
    assert rates.zone_between(sp, "13010000") == 1
    assert rates.zone_between(sp, rj) == 2
    assert rates.zone_between(sp, "80010000") == 3
    assert rates.zone_between(sp, manaus) == 4
    local = rates.rates_for(origin_cep=sp, destination_cep=sp, weight_grams=800)
    remote = rates.rates_for(origin_cep=sp, destination_cep=manaus, weight_grams=800)
    assert {(r.carrier, r.service) for r in local} == {
        ("correios", "PAC"),
        ("correios", "SEDEX"),
        ("veloz", "EXPRESS"),
    }
    assert ("veloz", "EXPRESS") not in {(r.carrier, r.service) for r in remote}
    assert [r.price for r in local] == sorted(r.price for r in local)
    by_service = {r.service: r for r in local}
    remote_by_service = {r.service: r for r in remote}
    assert remote_by_service["PAC"].price > by_service["PAC"].price
    assert remote_by_service["SEDEX"].estimated_days > by_service["SEDEX"].estimated_days


def test_heavier_costs_more_and_splits_into_parcels() -> None:
    light = rates.rates_for(origin_cep="01310100", destination_cep="20040002", weight_grams=100)
    heavy = rates.rates_for(origin_cep="01310100", destination_cep="20040002", weight_grams=45_000)
    parcels = rates.parcels_for(45_000)
    assert parcels.count == 2
    assert parcels.total_grams == 45_000 + 2 * rates.PACKAGING_GRAMS
    assert parcels == rates.Parcels(full=1, last_grams=45_000 - 29_800 + rates.PACKAGING_GRAMS)
    light_prices = {r.service: r.price for r in light}
    for rate in heavy:
        assert rate.price > light_prices[rate.service]


def _reference_parcels(weight_grams: int) -> list[int]:
    """`parcels_for` as it was before it became arithmetic: one loop turn per parcel."""
    if weight_grams <= 0:
        return [rates.PACKAGING_GRAMS]
    parcels: list[int] = []
    remaining = weight_grams
    while remaining > 0:
        content = min(remaining, rates.MAX_PARCEL_GRAMS - rates.PACKAGING_GRAMS)
        parcels.append(content + rates.PACKAGING_GRAMS)
        remaining -= content
    return parcels


def _reference_band_price(rate: rates.ServiceRate, parcel_grams: int) -> int:
    for limit, price in zip(rates.WEIGHT_BANDS, rate.band_prices, strict=True):
        if parcel_grams <= limit:
            return price
    raise ValueError(f"parcel of {parcel_grams} g above the heaviest band")


def _reference_prices(origin_cep: str, destination_cep: str, weight_grams: int) -> list[Rate]:
    """`rates_for` as it was, pricing every parcel of the list one by one."""
    zone = rates.zone_between(origin_cep, destination_cep)
    parcels = _reference_parcels(weight_grams)
    found = []
    for rate in rates.SERVICES:
        if zone not in rate.zones:
            continue
        base = sum(_reference_band_price(rate, parcel) for parcel in parcels)
        price = (base * rates.ZONE_PERCENT[zone - 1] + 50) // 100
        found.append(Rate(rate.carrier, rate.service, price, rate.days_by_zone[zone - 1]))
    return sorted(found, key=lambda r: (r.price, r.estimated_days, r.carrier, r.service))


def _boundary_weights() -> list[int]:
    """Around every band limit, as the last parcel after 0 to 3 full ones, and around whole
    parcels up to the largest weight a quote admits."""
    content = rates.MAX_PARCEL_CONTENT_GRAMS
    weights = {-1, 0, 1, 2, 50, 99, 100, 101}
    for full in range(4):
        for limit in rates.WEIGHT_BANDS:
            for delta in (-1, 0, 1):
                weights.add(full * content + limit - rates.PACKAGING_GRAMS + delta)
    for full in (1, 2, 3, 10, 33, 100, 501, rates.MAX_PARCELS - 1, rates.MAX_PARCELS):
        weights.update(full * content + delta for delta in (-1, 0, 1, 12_345))
    weights.update(range(0, 5 * content, 997))  # a sweep that lands on no boundary in particular
    return sorted(weights)


@pytest.mark.parametrize(
    "destination", ["01310100", "20040002", "80010000", "69010000"], ids=["z1", "z2", "z3", "z4"]
)
def test_arithmetic_parcels_price_exactly_as_one_parcel_at_a_time(destination: str) -> None:
    for weight in _boundary_weights():
        parcels = rates.parcels_for(weight)
        expanded = [rates.MAX_PARCEL_GRAMS] * parcels.full + (
            [parcels.last_grams] if parcels.last_grams else []
        )
        assert expanded == _reference_parcels(weight), weight
        assert parcels.count == len(expanded)
        assert parcels.total_grams == sum(expanded)
        assert rates.rates_for(
            origin_cep="01310100", destination_cep=destination, weight_grams=weight
        ) == _reference_prices("01310100", destination, weight), weight


def test_correios_tracking_numbers_carry_a_valid_check_digit() -> None:
    assert s10_check_digit("47312482") == 9  # UPU S10 example: AA 47312482 9 GB
    number = new_tracking_number("correios", "SEDEX")
    assert number.startswith("SX")
    assert number.endswith("BR")
    assert len(number) == 13
    assert int(number[10]) == s10_check_digit(number[2:10])
    assert new_tracking_number("veloz", "EXPRESS").startswith("VEL")
