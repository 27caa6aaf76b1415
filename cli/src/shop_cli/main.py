"""`shop`: the platform's command line (run with `uv run shop ...`)."""

from __future__ import annotations

import typer

from shop_cli import db

app = typer.Typer(help="Operate the shop platform.", no_args_is_help=True)
app.add_typer(db.app, name="db")

if __name__ == "__main__":
    app()
