"""Prices for a run: the user's (flags or a TOML file), LiteLLM's map, or — only for a local model on your own
machine — a default CPU-hour price, said out loud. Stored in run.json so every worker prices alike."""

from __future__ import annotations

from pathlib import Path

from ..budget import ModelPrice, PriceBook, UnpricedModel

# What an hour of engine time costs by default for `local/...` models (the same as bench/sample_cache.py): roughly a
# small cloud CPU instance. Pass --price-cpu-hour to use your own number.
DEFAULT_LOCAL_CPU_HOUR = 0.10


def price_name(model: str) -> str:
    """The PriceBook entry a model name is priced by (vllm/<served>@<url> is priced as vllm/<served>)."""
    if model.startswith("vllm/"):
        return model.split("@", 1)[0]
    return model


def resolve_prices(model: str, *, cpu_hour: float | None = None, gpu_hour: float | None = None,
                   prices_file: str | Path | None = None) -> tuple[dict[str, dict], str | None]:
    """(overrides to store in run.json, a note if a default price was applied). Raises UnpricedModel saying which
    flag to pass when nobody knows the model's price."""
    overrides: dict[str, dict] = {}
    if prices_file is not None:
        book = PriceBook.from_toml(prices_file)
        overrides.update({name: p.model_dump() for name, p in book._overrides.items()})
    name = price_name(model)
    if cpu_hour is not None or gpu_hour is not None:
        table = {k: v for k, v in (("cpu_hour", cpu_hour), ("gpu_hour", gpu_hour)) if v is not None}
        overrides[name] = ModelPrice.from_table(table, source="--price flags").model_dump()
    book = book_from(overrides)
    try:
        book.price(name)
        return overrides, None
    except UnpricedModel:
        pass
    if model.startswith("local/"):
        overrides[name] = ModelPrice.from_table({"cpu_hour": DEFAULT_LOCAL_CPU_HOUR},
                                                source="default for local models").model_dump()
        note = (f"{model} has no price: charging ${DEFAULT_LOCAL_CPU_HOUR:.2f} per CPU-hour of engine time "
                f"(pass --price-cpu-hour to set your own)")
        return overrides, note
    raise UnpricedModel(
        f"model {model!r} has no price (LiteLLM's map does not list {name!r}); budgetflow will not spend blind. "
        f"Pass --price-cpu-hour USD (or --price-gpu-hour) for an engine you run, or --prices FILE.toml with a "
        f"[models.\"{name}\"] table (input_per_million, output_per_million, cpu_hour, gpu_hour)."
    )


def book_from(overrides: dict[str, dict]) -> PriceBook:
    return PriceBook({name: ModelPrice(**fields) for name, fields in overrides.items()})
