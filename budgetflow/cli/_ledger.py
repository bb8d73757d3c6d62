"""`budgetflow ledger show | export | verify | recover`: read and audit a budget ledger."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ._common import DEFAULT_DB, DbOption, Typer, err, fail, number, one_line, out, safe_url, show

if TYPE_CHECKING:
    from ..budget import AccountBalance, Ledger

app = Typer(
    help=(
        "Inspect, export, audit and recover a budget ledger.\n\n"
        "--db takes a SQLAlchemy URL or a file path: sqlite:///run/ledger.db (default: $BUDGETFLOW_DB or "
        f"{DEFAULT_DB}), or postgresql://user@host/db. Nothing here creates a ledger.\n\n"
        "Example: budgetflow ledger show --db runs/demo/ledger.db"
    ),
)

FORMATS = ("json", "csv", "summary-json")
_SHORT = {"input_tokens": "in tokens", "output_tokens": "out tokens", "gpu_seconds": "GPU s", "cpu_seconds": "CPU s",
          "wall_seconds": "wall s"}


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="ledger")


def _open(db: str, *, recover: bool = False) -> Ledger:
    """Open an existing ledger (never creates one), or fail with one line saying what to check."""
    from ..budget import Ledger, LedgerMissing

    try:
        return Ledger(db, create=False, recover=recover)
    except LedgerMissing as exc:
        fail(one_line(exc))
    except Exception as exc:  # a bad URL, an unreachable server, a file that is not a ledger: say so plainly
        fail(f"cannot open ledger {safe_url(db)!r}: {one_line(exc)} (check --db)")


def _fmt(dim: str, value: float | int | None) -> str:
    """A table cell: dollars to the micro-dollar, counts whole, seconds to the microsecond (exports keep full
    precision)."""
    if value is None:
        return "-"
    if dim == "usd":
        from ..budget import format_usd

        return format_usd(value)
    if dim in ("input_tokens", "output_tokens", "calls"):
        return f"{int(value):,}"
    return f"{value:,.6f}".rstrip("0").rstrip(".") if value else "0"


@app.command("show")
def ledger_show(
    db: DbOption = DEFAULT_DB,
    entries: Annotated[bool, typer.Option("--entries", help="List journal entries instead of account totals.")] = False,
    account: Annotated[Optional[str], typer.Option(help="With --entries: only this account's entries.")] = None,
    limit: Annotated[int, typer.Option(help="With --entries: the last N entries (0: all).",
                                       callback=number(at_least=0))] = 50,
) -> None:
    """Per-account summary (spent / cap, and what is held), or with --entries the journal itself.

    Numbers are never cut: piped, the table is as wide as it needs; on a terminal, cells wrap.

    Example: budgetflow ledger show --db runs/demo/ledger.db

    Example: budgetflow ledger show --db runs/demo/ledger.db --entries --account demo/task/HumanEval/0
    """
    from ..budget import LedgerMissing

    ledger = _open(db)
    try:
        if entries:
            try:
                rows = ledger.entries(account=account, limit=limit or None)
            except LedgerMissing as exc:
                fail(one_line(exc))
            show(_entries_table(rows, f"journal of {safe_url(db)}" + (f" (last {limit})" if limit else "")))
        else:
            show(_accounts_table(ledger.accounts(), f"accounts in {safe_url(db)}: spent / cap (+held)"))
            from ..budget import list_keys

            keys = list_keys(ledger)
            if keys:  # a gateway's ledger: what each key's account spent
                from ._serve import keys_table

                show(keys_table(ledger, keys, "API keys (budgetflow serve): spent / cap of each key's account"))
    finally:
        ledger.close()


def _entries_table(rows: list, title: str) -> Table:
    table = Table(title=title)
    for col in ("#", "time (UTC)", "kind", "account", "amounts", "note"):
        table.add_column(col, overflow="fold")
    for e in rows:
        amounts = ", ".join(f"{k}={v}" for k, v in e.amounts.items())  # in full: never rounded for display
        table.add_row(str(e.seq), e.time[11:23], e.kind, escape(e.account), amounts, escape(e.note))
    return table


def _accounts_table(balances: list[AccountBalance], title: str) -> Table:
    from ..budget import DIMENSIONS

    used = [d for d in DIMENSIONS if any(
        getattr(b.budget, d) is not None or getattr(b.committed, d) or getattr(b.reserved, d) for b in balances)]
    used = used or ["usd"]
    table = Table(title=title, caption="-: no cap")
    table.add_column("account", overflow="fold")
    for dim in used:
        table.add_column(_SHORT.get(dim, dim), justify="right", overflow="fold")
    children: dict[str | None, list[AccountBalance]] = {}
    for bal in balances:
        children.setdefault(bal.parent, []).append(bal)

    def add(bal: AccountBalance, depth: int) -> None:
        cells = []
        for dim in used:
            cell = _fmt(dim, getattr(bal.committed, dim)) + " / " + _fmt(dim, getattr(bal.budget, dim))
            if getattr(bal.reserved, dim):
                cell += f" (+{_fmt(dim, getattr(bal.reserved, dim))})"
            cells.append(cell)
        table.add_row("  " * depth + escape(bal.name), *cells)
        for child in children.get(bal.name, []):
            add(child, depth + 1)

    for root in children.get(None, []):
        add(root, 0)
    return table


@app.command("export")
def ledger_export(
    db: DbOption = DEFAULT_DB,
    fmt: Annotated[str, typer.Option("--format", "-f", help="json (one entry per line), csv (one entry per row), or "
                                     "summary-json (the per-account summary).")] = "json",
    dest: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write here instead of standard output.")] = None,
) -> None:
    """Export every journal entry (json or csv), or the per-account summary (summary-json), at full precision.

    Example: budgetflow ledger export --db runs/demo/ledger.db -f csv -o ledger.csv
    """
    if fmt not in FORMATS:
        fail(f"--format: unknown format {fmt!r}; use one of: {', '.join(FORMATS)}")
    ledger = _open(db)
    try:
        stream = open(dest, "w", newline="") if dest else sys.stdout
    except OSError as exc:
        ledger.close()
        fail(f"--out {dest}: cannot write there: {exc.strerror or exc}")
    try:
        _export(ledger, fmt, stream)
    finally:
        if dest:
            stream.close()
        ledger.close()
    if dest:
        err.print(f"wrote {escape(str(dest))}")


def _export(ledger: Ledger, fmt: str, stream) -> None:
    from ..budget import DIMENSIONS

    if fmt == "summary-json":
        json.dump([b.model_dump(exclude={"cap_units", "reserved_units", "committed_units"})
                   for b in ledger.accounts()], stream, indent=2)
        stream.write("\n")
    elif fmt == "json":
        for e in ledger.entries():
            stream.write(e.model_dump_json() + "\n")
    else:
        amount_cols = list(DIMENSIONS) + [f"cap_{d}" for d in DIMENSIONS]
        writer = csv.writer(stream)
        writer.writerow(["seq", "time", "kind", "account", "reservation", "owner", *amount_cols, "note", "hash"])
        for e in ledger.entries():
            writer.writerow([e.seq, e.time, e.kind, e.account, e.reservation or "", e.owner or "",
                             *[e.amounts.get(c, "") for c in amount_cols], e.note, e.hash])


@app.command("verify")
def ledger_verify(db: DbOption = DEFAULT_DB) -> None:
    """Audit the ledger: hash chain, chain head, balances and open reservations against the journal, and every
    account's cap after every entry.

    Exits 0 when intact and within every cap; 1 naming the first bad entry when anything was edited, deleted or
    reordered, or when any amount was billed beyond its reservation (an overrun: the cap was exceeded).

    Example: budgetflow ledger verify --db runs/demo/ledger.db
    """
    ledger = _open(db)
    try:
        report = ledger.verify()
    finally:
        ledger.close()
    if report.ok:
        out.print(f"[green]{escape(report.summary())}[/green]", soft_wrap=True)
        return
    err.print(f"[red]{escape(report.summary())}[/red]", soft_wrap=True)
    rest = report.problems[1:] if report.problems else report.violations[1:]
    for finding in rest[:9]:
        err.print(f"  - {escape(finding)}", soft_wrap=True)
    raise typer.Exit(1)


@app.command("recover")
def ledger_recover(db: DbOption = DEFAULT_DB) -> None:
    """Settle reservations left open by processes that died (charged in full, as reserved, and journalled).

    Opening a ledger from the SDK does this too; live processes' reservations are never touched.

    Example: budgetflow ledger recover --db runs/demo/ledger.db
    """
    from ..budget import DIMENSIONS

    ledger = _open(db, recover=True)
    ledger.close()
    if not ledger.recovered:
        out.print("nothing to recover: no open reservation belongs to a dead process")
        return
    for r in ledger.recovered:
        held = ", ".join(f"{d}={getattr(r.charged, d)}" for d in DIMENSIONS if getattr(r.charged, d))
        out.print(f"recovered {r.reservation_id[:12]} on {escape(r.account)}: charged as reserved ({held})",
                  soft_wrap=True)
    out.print(f"{len(ledger.recovered)} reservation(s) settled conservatively")
