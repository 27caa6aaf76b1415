"""Which environment variables each component reads, straight from its settings class.

A deployment that sets `ORDERS_DATABSE_URL` (typo) would run happily on the default; so the
compose file and the chart are checked against this list. For a settings class with prefix
`ORDERS_`, a field `database_url` is read from `ORDERS_DATABASE_URL` and then from the shared
`SHOP_DATABASE_URL` (shopkit.settings).
"""

from __future__ import annotations

import importlib
import inspect
from functools import cache

from shopkit.settings import SERVICE_PORTS, ServiceSettings


def settings_class(component: str) -> type[ServiceSettings]:
    module = importlib.import_module(
        "gateway.config" if component == "gateway" else f"{component}_service.config"
    )
    found = [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, ServiceSettings)
        and value is not ServiceSettings
        and value.__module__ == module.__name__
    ]
    assert len(found) == 1, f"{module.__name__} should define one settings class, found {found}"
    return found[0]


@cache
def known_variables(component: str) -> frozenset[str]:
    """Variables read by `component` (a service name, `gateway`, or `migrations`/`cli` = all)."""
    if component in ("migrations", "cli"):
        return frozenset().union(*(known_variables(name) for name in SERVICE_PORTS))
    cls = settings_class(component)
    prefix = str(cls.model_config.get("env_prefix", "")).upper()
    names: set[str] = set()
    for field_name, field in cls.model_fields.items():
        keys = {field_name}
        if isinstance(field.validation_alias, str):
            keys.add(field.validation_alias)
        if isinstance(field.alias, str):
            keys.add(field.alias)
        for key in keys:
            names.add(f"{prefix}{key}".upper())
            names.add(f"SHOP_{key}".upper())
    return frozenset(names)
