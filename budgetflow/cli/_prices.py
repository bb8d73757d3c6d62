"""`budgetflow prices show`: what a model costs, or why budgetflow will not price it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ._common import Typer, fail, one_line, show

app = Typer(
    help=(
        "Look up what a model costs: LiteLLM's bundled price map (read offline) plus your overrides. A model nobody "
        "prices is refused by every command that would spend on it.\n\n"
        "Example: budgetflow prices show openai/gpt-4o-mini"
    ),
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="prices")


@app.command("show")
def prices_show(
    model: Annotated[str, typer.Argument(help="Model name, e.g. gpt-4o-mini, openai/gpt-4o or local/smollm2-135m.",
                                         show_default=False)],
    prices: Annotated[Optional[Path], typer.Option(
        help="TOML file of price overrides: a \\[models.\"NAME\"] table per model with input_per_million, "
             "output_per_million, cpu_hour, gpu_hour.")] = None,
) -> None:
    """Show a model's prices, or why it cannot be priced (exit 1).

    Example: budgetflow prices show gpt-4o-mini

    Example: budgetflow prices show vllm/qwen --prices my-prices.toml
    """
    from ..budget import PriceBook, UnpricedModel

    if prices is not None and not prices.is_file():
        fail(f"--prices {prices}: no such file; give a TOML file of price overrides")
    try:
        book = PriceBook.from_toml(prices) if prices else PriceBook()
        price = book.price(model)
    except (UnpricedModel, ValueError, OSError) as exc:
        fail(one_line(exc), code=1)
    table = Table(title=f"{escape(model)} (source: {escape(price.source)})")
    table.add_column("item")
    table.add_column("USD", justify="right", overflow="fold")
    for label, value in (
        ("input, per 1M tokens", price.input_per_token * 1e6),
        ("cached input, per 1M tokens", (price.cached_input_per_token or price.input_per_token) * 1e6),
        ("output, per 1M tokens", price.output_per_token * 1e6),
        ("CPU, per hour", price.cpu_second * 3600),
        ("GPU, per hour", price.gpu_second * 3600),
    ):
        table.add_row(label, f"{value:.4f}")
    show(table)
