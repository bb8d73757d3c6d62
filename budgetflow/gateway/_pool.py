"""The models a gateway serves: budgetflow model names, each resolved (and a local engine started) on its first
request, once, then shared by every key. Prices are fixed when the gateway starts: an unpriced model is refused
before the gateway listens, never discovered mid-request."""

from __future__ import annotations

import threading

from ..budget import PriceBook
from ..llm import LLM, get_llm
from ..runs import book_from, resolve_prices


class UnknownModel(LookupError):
    """The request names a model this gateway does not serve (HTTP 404)."""


class ModelPool:
    def __init__(self, names: list[str] | None = None, *, llms: dict[str, LLM] | None = None,
                 prices: PriceBook | None = None, cpu_hour: float | None = None, gpu_hour: float | None = None,
                 prices_file: str | None = None, engine_options: dict | None = None):
        self._llms: dict[str, LLM] = dict(llms or {})
        self.names = list(dict.fromkeys([*(names or []), *self._llms]))
        if not self.names:
            raise ValueError("a gateway serves at least one model: pass --model NAME")
        overrides: dict[str, dict] = {}
        self.notes: list[str] = []
        for name in names or []:  # raises UnpricedModel, saying which flag prices it
            more, note = resolve_prices(name, cpu_hour=cpu_hour, gpu_hour=gpu_hour, prices_file=prices_file)
            overrides.update(more)
            if note:
                self.notes.append(f"{name}: {note}")
        self.prices = prices or book_from(overrides)
        self._options = dict(engine_options or {})
        self._locks = {name: threading.Lock() for name in self.names}

    def get(self, name: str) -> LLM:
        """The model `name` (started on first use; blocking: call it off the event loop)."""
        if name not in self._locks:
            raise UnknownModel(f"model {name!r} is not served here; this gateway serves: {', '.join(self.names)}")
        with self._locks[name]:
            if name not in self._llms:
                self._llms[name] = get_llm(name, prices=self.prices, **self._options)
            return self._llms[name]

    def started(self) -> list[str]:
        return [n for n in self.names if n in self._llms]
