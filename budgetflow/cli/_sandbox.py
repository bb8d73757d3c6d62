"""`budgetflow sandbox check`: which sandbox backends work on this machine, and why the others do not."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ._common import Typer, show

app = Typer(
    help=(
        "Isolated execution of untrusted code (candidate programs, their tests, agents' commands).\n\n"
        "Example: budgetflow sandbox check"
    ),
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="sandbox")


@app.callback()
def _group() -> None:
    """Sandbox backends."""


@app.command("check")
def check(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON ({backend: {ok, reason}}) instead of a table.")
                       ] = False,
) -> None:
    """Probe every registered backend with a real run; say which work here and, for the others, why not and what to
    do. Exits 1 when none works.

    Example: budgetflow sandbox check

    Example: budgetflow sandbox check --json
    """
    from ..sandbox import available_backends

    status = available_backends()
    if as_json:
        typer.echo(json.dumps({k: {"ok": v is None, "reason": v} for k, v in status.items()}))
    else:
        table = Table(title="budgetflow sandbox backends")
        table.add_column("backend")
        table.add_column("works")
        table.add_column("why not / what to do", overflow="fold")
        for name, reason in status.items():
            table.add_row(name, "yes" if reason is None else "no", escape(reason or ""))
        show(table)
    if all(v is not None for v in status.values()):
        raise typer.Exit(1)
