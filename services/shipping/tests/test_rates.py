"""Rate tables and CEP rules (pure functions)."""

from __future__ import annotations

import pytest
from shipping_service import rates
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
    assert len(rates.parcels_for(45_000)) == 2
    assert sum(rates.parcels_for(45_000)) == 45_000 + 2 * rates.PACKAGING_GRAMS
    assert all(p <= rates.MAX_PARCEL_GRAMS for p in rates.parcels_for(45_000))
    light_prices = {r.service: r.price for r in light}
    for rate in heavy:
        assert rate.price > light_prices[rate.service]


def test_correios_tracking_numbers_carry_a_valid_check_digit() -> None:
    assert s10_check_digit("47312482") == 9  # UPU S10 example: AA 47312482 9 GB
    number = new_tracking_number("correios", "SEDEX")
    assert number.startswith("SX")
    assert number.endswith("BR")
    assert len(number) == 13
    assert int(number[10]) == s10_check_digit(number[2:10])
    assert new_tracking_number("veloz", "EXPRESS").startswith("VEL")
