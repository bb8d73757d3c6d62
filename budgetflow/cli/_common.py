"""What every command module shares: the two consoles, the one-line error, option checks and shared options.

Exit codes, for every command: 0 done; 1 the command ran and found a problem (a ledger that fails its audit, a run
over its cap); 2 bad input or a precondition not met — said in one line, before anything was created, written or
spent.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console, RenderableType
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

out = Console()  # results: tables, summaries (stdout)
err = Console(stderr=True)  # errors, notes and progress (stderr)

N = TypeVar("N", int, float)


def reflow(text: str | None) -> str | None:
    """A docstring as help: each paragraph joined into one line (typer would keep the source's line breaks and
    then wrap again), indented blocks (commands to copy) kept as written."""
    if not text:
        return text
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if p.startswith(" ") else " ".join(ln.strip() for ln in p.splitlines()) for p in paragraphs)


class Command(TyperCommand):
    """Every budgetflow command: help from its docstring, reflowed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = reflow(self.help)


class Group(TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = reflow(self.help)


class Typer(typer.Typer):
    """The command groups' Typer: groups and commands whose help reads as written (see `reflow`)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", Group)
        kwargs.setdefault("no_args_is_help", True)
        kwargs.setdefault("rich_markup_mode", "rich")
        super().__init__(**kwargs)

    def command(self, *args: Any, cls: type[TyperCommand] | None = None, **kwargs: Any) -> Any:
        return super().command(*args, cls=cls or Command, **kwargs)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `error: MESSAGE` as one line (never wrapped, whatever the terminal width) and exit with `code`."""
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True, highlight=False)
    raise typer.Exit(code)


def note(message: str) -> None:
    err.print(f"[yellow]note:[/yellow] {escape(message)}", soft_wrap=True, highlight=False)


def one_line(exc: BaseException) -> str:
    """An exception's message on one line: libraries (SQLAlchemy, psycopg) spread theirs over several and append a
    link to their docs, which says nothing about what to do here."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return "; ".join(ln for ln in lines if not ln.startswith("(Background on this error")) or type(exc).__name__


def safe_url(url: str) -> str:
    """A ledger URL as printed: without its password."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a plain path, or a URL SQLAlchemy cannot parse: nothing to hide
        return url


def show(renderable: RenderableType) -> None:
    """Print to stdout without cutting anything. Piped or redirected, rich would assume 80 columns (or $COLUMNS) and
    cut table cells to fit: there the output gets the width it needs. On a terminal, cells wrap instead (the tables
    use overflow="fold")."""
    if out.is_terminal:
        out.print(renderable)
        return
    needed = out.measure(renderable, options=out.options.update_width(10_000)).maximum
    Console(width=max(out.width, needed), file=out.file).print(renderable)  # (print(width=) cannot go wider)


# ---------------------------------------------------------------- option checks (typer callbacks)
# A failed check raises typer.BadParameter: click prefixes it with the option's name, and main() prints it as one line
# with exit code 2, before the command body runs.


def number(*, above: float | None = None, at_least: float | None = None, at_most: float | None = None,
           hint: str = "") -> Callable[[N | None], N | None]:
    """A check for a numeric option: finite (no nan, no inf), > `above` or >= `at_least`, and <= `at_most`. `hint`
    follows the rule in the message, e.g. ", e.g. --budget-usd 0.05"."""

    def check(value: N | None) -> N | None:
        if value is None:
            return value
        if isinstance(value, float) and not math.isfinite(value):
            rule = f"more than {above:g}" if above is not None else f"at least {at_least:g}"
            raise typer.BadParameter(f"must be a finite number, {rule}{hint}; got {value}")
        if at_most is not None and at_least is not None and not at_least <= value <= at_most:
            raise typer.BadParameter(f"must be between {at_least:g} and {at_most:g}{hint}; got {value:g}")
        if above is not None and not value > above:
            raise typer.BadParameter(f"must be more than {above:g}{hint}; got {value:g}")
        if at_least is not None and not value >= at_least:
            raise typer.BadParameter(f"must be at least {at_least:g}{hint}; got {value:g}")
        if at_most is not None and not value <= at_most:
            raise typer.BadParameter(f"must be at most {at_most:g}{hint}; got {value:g}")
        return value

    return check


def one_of(names: Callable[[], Iterable[str]], what: str = "") -> Callable[[str | None], str | None]:
    """A check for an option whose values come from the code (a registry, a config schema): looked up only when the
    option is given, so a command's startup does not import what it does not use."""

    def check(value: str | None) -> str | None:
        if value is None:
            return value
        known = list(names())
        if known and value not in known:
            raise typer.BadParameter(f"{value!r} is not a known {what or 'value'}; use one of: {', '.join(known)}")
        return value

    return check


# ---------------------------------------------------------------- shared options

DEFAULT_DB = "sqlite:///budgetflow.db"
DbOption = Annotated[
    str,
    typer.Option("--db", envvar="BUDGETFLOW_DB", show_envvar=True,
                 help="The ledger: a SQLAlchemy URL (sqlite:///runs/demo/ledger.db, postgresql://USER@HOST/DB) or a "
                      "SQLite file path."),
]
