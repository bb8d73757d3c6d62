"""`budgetflow sandbox ...` commands (mounted by the main CLI)."""
from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Isolated execution of untrusted code.", no_args_is_help=True)


@app.callback()
def _main() -> None:
    """Sandbox backends."""


@app.command()
def check(as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table")) -> None:
    """Report which sandbox backends work on this machine, and why the others do not."""
    from .factory import available_backends

    status = available_backends()
    if as_json:
        typer.echo(json.dumps({k: {"ok": v is None, "reason": v} for k, v in status.items()}))
    else:
        table = Table(title="budgetflow sandbox backends")
        table.add_column("backend")
        table.add_column("works")
        table.add_column("why not / what to do")
        for name, reason in status.items():
            table.add_row(name, "yes" if reason is None else "no", reason or "")
        Console().print(table)
    if all(v is not None for v in status.values()):
        raise typer.Exit(1)
