"""Erasure helpers shared by the services that keep copies of a customer's personal data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

REMOVED: Final = "[removed]"
"""What stands where a person's data was erased."""


def anonymised_address(address: Mapping[str, Any]) -> dict[str, Any]:
    """An address snapshot without the person: who, street, number, district and city go.

    The state and the CEP's five-digit sector (a region of a city, not a street) stay: enough for
    tax by state and regional statistics, not enough to find anyone. The result still validates
    as a `ShippingAddress`, so an event built from it after the erasure stays well-formed.
    """
    cep = str(address.get("cep") or "")
    return {
        "recipient": REMOVED,
        "street": REMOVED,
        "number": "",
        "complement": None,
        "district": REMOVED,
        "city": REMOVED,
        "state": address.get("state"),
        "cep": cep[:5] + "000" if len(cep) == 8 else "00000000",
        "country": address.get("country"),
    }
