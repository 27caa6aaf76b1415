"""`shop`: the platform's command line (run with `uv run shop ...`).

Services contribute their own command groups from `<service>_service/cli.py` (a `typer.Typer`
named `app`); they are mounted here when present.
"""

from __future__ import annotations

import importlib
import importlib.util

import typer

from shop_cli import db

app = typer.Typer(help="Operate the shop platform.", no_args_is_help=True)
app.add_typer(db.app, name="db")

_GROUPS = {
    "admin": "auth_service.cli",
    "events": "shopkit.cli",
    "carrier": "shipping_service.cli",
    "payments": "payments_service.cli",
    "inventory": "inventory_service.cli",
    "verify": "shop_cli.verify",
    "demo": "shop_cli.demo",
}

for _name, _module in _GROUPS.items():
    if importlib.util.find_spec(_module) is None:
        continue
    _group = importlib.import_module(_module)
    if isinstance(getattr(_group, "app", None), typer.Typer):
        app.add_typer(_group.app, name=_name)
    elif callable(getattr(_group, "command", None)):
        app.command(_name)(_group.command)

if __name__ == "__main__":
    app()
