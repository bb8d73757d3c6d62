"""The `budgetflow` command line: `app` (typer) and `main()` (the console script and `python -m budgetflow`).

One module per command group, all in one pattern: a module defines its commands (a `typer.Typer` named `app` for a
group) and `register(root)` mounts them here. Each command imports the subpackages it uses when it runs, through
their package (`from ..runs import prepare_run`), so `budgetflow ledger ...` starts without loading the rest.
Shared parts (consoles, the one-line error, option checks) live in `_common`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from rich.markup import escape

from . import _ledger as ledger, _models as models, _prices as prices, _run as run, _sandbox as sandbox, _swe as swe
from . import _serve as gateway
from ._common import Typer, err, out

__all__ = ["app", "main"]

app = Typer(
    help=(
        "budgetflow: agentic, cost-controlled LLM workflows under a budget that is never exceeded.\n\n"
        "Every model call, tool run and verification reserves its worst-case cost on a ledger before it runs, "
        "then commits what it really cost. Run a batch with `budgetflow run`, audit its ledger with "
        "`budgetflow ledger ...`.\n\n"
        "Example: budgetflow run humaneval --model local/smollm2-135m --budget-usd 0.01 --limit 5 --out runs/try"
    ),
)


@app.command()
def version() -> None:
    """Print the budgetflow version.

    Example: budgetflow version
    """
    from .. import __version__

    out.print(__version__)


for _module in (run, ledger, prices, models, sandbox, swe, gateway):
    _module.register(app)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI. A usage error (a bad option value, a missing argument) is one line naming the option, exit 2,
    instead of click's framed box; everything else is as typer does it."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch LiteLLM's price map
    try:
        code = app(args=list(argv) if argv is not None else None, prog_name="budgetflow", standalone_mode=False)
    except Exception as exc:
        _exit_for(exc)
        raise
    sys.exit(code if isinstance(code, int) else 0)


def _exit_for(exc: Exception) -> None:
    """Exit as click would for its own exceptions, with usage errors on one line; return for anything else. Matched
    by class name: typer ≥ 0.2x carries its own copy of click, older ones use click itself."""
    kinds = {cls.__name__ for cls in type(exc).__mro__}
    if "NoArgsIsHelpError" in kinds:  # `budgetflow ledger`: the group's help
        exc.show()  # type: ignore[attr-defined]
    elif "UsageError" in kinds:
        ctx = getattr(exc, "ctx", None)
        hint = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
        err.print(f"[red]error:[/red] {escape(exc.format_message())}{escape(hint)}",  # type: ignore[attr-defined]
                  soft_wrap=True, highlight=False)
    elif "ClickException" in kinds:
        exc.show()  # type: ignore[attr-defined]
    elif "Abort" in kinds:
        err.print("aborted")
        sys.exit(1)
    else:
        return
    sys.exit(getattr(exc, "exit_code", 1))
