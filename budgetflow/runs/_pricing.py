"""Prices for a run: the user's (flags or a TOML file), LiteLLM's map, or — only for a local model on your own
machine — a default price per CPU-hour and per GPU-hour of engine time, said out loud. Stored in run.json so every
worker prices alike. A local engine is priced on whichever device it lands on: the engine refuses a device whose
hour has no price, so a GPU machine never runs with a $0 engine."""

from __future__ import annotations

from pathlib import Path

from ..budget import SANDBOX_CPU, ModelPrice, PriceBook, UnpricedModel, format_usd

# What an hour of engine time costs by default for `local/...` models: roughly a small cloud CPU instance (the same as
# bench/sample_cache.py), and roughly an on-demand datacenter GPU (H100-class rentals list at $2-4 an hour).
# Pass --price-cpu-hour / --price-gpu-hour to use your own numbers.
DEFAULT_LOCAL_CPU_HOUR = 0.10
DEFAULT_LOCAL_GPU_HOUR = 2.00


def price_name(model: str) -> str:
    """The PriceBook entry a model name is priced by (vllm/<served>@<url> is priced as vllm/<served>)."""
    if model.startswith("vllm/"):
        return model.split("@", 1)[0]
    return model


def resolve_prices(model: str, *, cpu_hour: float | None = None, gpu_hour: float | None = None,
                   prices_file: str | Path | None = None,
                   sandbox_cpu_hour: float | None = None) -> tuple[dict[str, dict], str | None]:
    """(overrides to store in run.json, a note if a default price was applied). Raises UnpricedModel saying which
    flag to pass when nobody knows the model's price. Sandbox CPU (test runs) is priced too: --sandbox-cpu-hour,
    the prices file's `sandbox` entry, or the default CPU-hour price."""
    overrides: dict[str, dict] = {}
    if prices_file is not None:
        book = PriceBook.from_toml(prices_file)
        overrides.update({name: p.model_dump() for name, p in book._overrides.items()})
    overrides, sandbox_note = _sandbox_price(overrides, sandbox_cpu_hour)
    name = price_name(model)
    if model.startswith("local/"):
        overrides, note = _local_prices(name, overrides, cpu_hour, gpu_hour)
        return overrides, "; ".join(n for n in (note, sandbox_note) if n) or None
    if cpu_hour is not None or gpu_hour is not None:
        table = {k: v for k, v in (("cpu_hour", cpu_hour), ("gpu_hour", gpu_hour)) if v is not None}
        overrides[name] = ModelPrice.from_table(table, source="--price flags").model_dump()
    book = book_from(overrides)
    try:
        book.price(name)
        return overrides, sandbox_note
    except UnpricedModel:
        pass
    raise UnpricedModel(
        f"model {model!r} has no price (LiteLLM's map does not list {name!r}); budgetflow will not spend blind. "
        f"Pass --price-cpu-hour USD (or --price-gpu-hour) for an engine you run, or --prices FILE.toml with a "
        f"[models.\"{name}\"] table (input_per_million, output_per_million, cpu_hour, gpu_hour)."
    )


def _sandbox_price(overrides: dict[str, dict], cpu_hour: float | None) -> tuple[dict[str, dict], str | None]:
    """Sandbox CPU priced like the machine's engine time: the flag, the prices file, else the default (said)."""
    if cpu_hour is not None:
        overrides[SANDBOX_CPU] = ModelPrice.from_table({"cpu_hour": cpu_hour}, source="--sandbox-cpu-hour").model_dump()
        return overrides, None
    if SANDBOX_CPU in overrides:
        return overrides, None
    overrides[SANDBOX_CPU] = ModelPrice.from_table({"cpu_hour": DEFAULT_LOCAL_CPU_HOUR},
                                                   source="default for sandbox runs").model_dump()
    return overrides, (f"sandbox runs are charged {format_usd(DEFAULT_LOCAL_CPU_HOUR)} per CPU-hour by default "
                       f"(pass --sandbox-cpu-hour to set your own)")


def _local_prices(name: str, overrides: dict[str, dict], cpu_hour: float | None,
                  gpu_hour: float | None) -> tuple[dict[str, dict], str | None]:
    """A local engine's price on both devices: the flags, else the TOML file's, else the defaults (said)."""
    given = overrides.get(name, {})
    if cpu_hour is None and gpu_hour is None and (given.get("input_per_token") or given.get("output_per_token")):
        return overrides, None  # priced per token by the prices file: that price holds on every device
    cpu = cpu_hour if cpu_hour is not None else (given.get("cpu_second") or 0) * 3600 or None
    gpu = gpu_hour if gpu_hour is not None else (given.get("gpu_second") or 0) * 3600 or None
    defaults = []
    if cpu is None:
        cpu = DEFAULT_LOCAL_CPU_HOUR
        defaults.append(f"{format_usd(DEFAULT_LOCAL_CPU_HOUR)} per CPU-hour")
    if gpu is None:
        gpu = DEFAULT_LOCAL_GPU_HOUR
        defaults.append(f"{format_usd(DEFAULT_LOCAL_GPU_HOUR)} per GPU-hour")
    table = {**{k: v for k, v in given.items() if k not in ("cpu_second", "gpu_second", "source")},
             "cpu_hour": cpu, "gpu_hour": gpu}
    source = "defaults for local models" if len(defaults) == 2 else "--price flags / prices file"
    overrides[name] = ModelPrice.from_table(table, source=source).model_dump()
    note = None
    if defaults:
        note = (f"{name} engine time is charged at {' and '.join(defaults)} by default (pass --price-cpu-hour / "
                f"--price-gpu-hour to set your own)")
    return overrides, note


def book_from(overrides: dict[str, dict]) -> PriceBook:
    return PriceBook({name: ModelPrice(**fields) for name, fields in overrides.items()})
