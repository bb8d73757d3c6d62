"""Checks on a model name before anything is created or spent, each failure one line that says what to do.

    notes = check_model("openai/gpt-4o-mini", prices=book)   # sends nothing
    probe_model("vllm/qwen@http://gpu-box:8000/v1")          # reaches the server, no billable request

`check_model` needs no network: the name's form, a local model being known and installed (and vLLM importable), a
price, and — for a LiteLLM model — the credentials LiteLLM's own check (`litellm.validate_environment`) wants in the
environment. `probe_model` finds what only trying can: that the endpoint answers. It opens connections only to
endpoints the user configured (a vllm/...@URL, a provider base URL from the environment) or on this machine, and
sends no request a provider bills: `GET /models` to a vLLM server, a bare TCP connect (nothing sent) otherwise. A
hosted provider's built-in endpoint is not probed: its first call tells.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import urllib.request
from typing import Literal
from urllib.parse import urlsplit

from ..budget import PriceBook, UnpricedModel
from . import _models as models
from ._metering import LLMError

__all__ = ["ModelCheckError", "ProviderUnreachable", "check_model", "local_model_status", "probe_model",
           "verify_local_model"]


class ModelCheckError(ValueError):
    """The model cannot be used as named; the message says why and what to do. Nothing was sent or spent."""


class ProviderUnreachable(ModelCheckError):
    """The model's server or provider does not answer at its endpoint (no request was sent, nothing spent)."""


def local_model_status(name: str) -> Literal["prepared", "installed", "missing"]:
    """Whether local model `name` is ready to serve, can be converted from installed packages, or lacks its
    weights. Raises ModelNotAvailable for an unknown name."""
    model = models.lookup(name)
    if models.is_prepared(model):
        return "prepared"
    try:
        models.source_files(model)
    except models.ModelNotAvailable:
        return "missing"
    return "installed"


def verify_local_model(name: str) -> list[str]:
    """Re-hash a prepared local model's files against its manifest: the problems found (none: intact)."""
    return models.verify(models.lookup(name))


def check_model(name: str, *, prices: PriceBook | None = None) -> list[str]:
    """Refuse, with ModelCheckError, a model name that cannot work here; sends nothing. Returns notes worth saying
    (e.g. that a local model will be converted on first use). `prices`: also check the model is priced by them."""
    if not name or name != name.strip():
        raise ModelCheckError(f"{name!r} is not a model name; use local/NAME, vllm/SERVED@URL or a LiteLLM name "
                              f"such as openai/gpt-4o-mini")
    if name.startswith("local/"):
        return _check_local(name, prices)
    if name.startswith("vllm/"):
        served, _ = split_vllm(name)
        _check_priced(f"vllm/{served}", prices)  # priced as vllm/<served>, wherever it is served
        return []
    return _check_litellm(name, prices)


def split_vllm(name: str) -> tuple[str, str]:
    """`vllm/<served-model>@<base-url>` → (served model, base URL)."""
    served, sep, url = name.removeprefix("vllm/").partition("@")
    if not sep or not served or not url.startswith(("http://", "https://")) or not urlsplit(url).hostname:
        raise ModelCheckError(f"{name!r}: use vllm/<served-model>@<base-url>, e.g. "
                              f"vllm/qwen@http://127.0.0.1:8000/v1")
    return served, url.rstrip("/")


def _check_priced(price_name: str, prices: PriceBook | None) -> None:
    if prices is None:
        return
    try:
        prices.price(price_name)
    except UnpricedModel as err:
        raise ModelCheckError(str(err)) from None


def _check_local(name: str, prices: PriceBook | None) -> list[str]:
    short = name.removeprefix("local/")
    if short not in models.LOCAL_MODELS:
        known = ", ".join(f"local/{n}" for n in models.LOCAL_MODELS)
        raise ModelCheckError(f"unknown local model {short!r}; known: {known} (see budgetflow models list)")
    if importlib.util.find_spec("vllm") is None:
        raise ModelCheckError("local models are served by vLLM, which is not installed here: pip install "
                              "'budgetflow[local]', or serve the model yourself and use vllm/SERVED@URL")
    model = models.lookup(short)
    _check_priced(name, prices)
    if models.is_prepared(model):
        return []
    try:
        models.source_files(model)  # the weights' packages: the error says which to install
    except models.ModelNotAvailable as err:
        raise ModelCheckError(str(err)) from None
    return [f"{name} is converted from its packaged weights on first use, once (or run: budgetflow models prepare "
            f"{short})"]


def _check_litellm(name: str, prices: PriceBook | None) -> list[str]:
    from ._remote import LiteLLMModel, _litellm

    litellm = _litellm()
    if prices is not None:
        try:  # the constructor refuses what cannot be budgeted: no price, no output-token limit for the provider
            LiteLLMModel(name, prices=prices)
        except (UnpricedModel, LLMError, ValueError) as err:
            raise ModelCheckError(str(err)) from None
    found = litellm.validate_environment(model=name)  # reads os.environ only: nothing is sent
    missing = [k for k in found.get("missing_keys") or [] if not os.environ.get(k)]
    if not found.get("keys_in_environment") and missing:
        raise ModelCheckError(f"LiteLLM finds no credentials for {name} in the environment (missing: "
                              f"{', '.join(missing)}): export {missing[0]}=... and run again; nothing was sent")
    return []


# ---------------------------------------------------------------- reaching the endpoint


def probe_model(name: str, *, timeout: float = 5.0) -> str | None:
    """Check the model's endpoint answers; returns the URL checked (None where none is probed: local models,
    which budgetflow serves itself, and hosted providers' built-in endpoints). Raises ProviderUnreachable, or
    ModelCheckError when a vLLM server answers but does not serve the model."""
    if name.startswith("local/"):
        return None
    if name.startswith("vllm/"):
        served, url = split_vllm(name)
        _probe_vllm(served, url, timeout)
        return url
    found = litellm_endpoint(name)
    if found is None:
        return None
    url, source = found
    _probe_tcp(url, source, timeout)
    return url


def _probe_vllm(served: str, url: str, timeout: float) -> None:
    import httpx

    try:  # the same unbilled request the engine makes when it starts (it reads max_model_len there)
        resp = httpx.get(f"{url}/models", timeout=timeout)
    except (httpx.ConnectError, httpx.ConnectTimeout) as err:
        raise ProviderUnreachable(f"cannot connect to the vLLM server at {url} ({_reason(err)}): start it, or "
                                  f"correct the URL in vllm/{served}@URL") from None
    except httpx.HTTPError as err:
        raise ProviderUnreachable(f"the vLLM server at {url} did not answer GET {url}/models within {timeout:g} s "
                                  f"({type(err).__name__}); check that it is up and not overloaded") from None
    if resp.status_code == 404:
        raise ModelCheckError(f"{url} has no OpenAI-compatible API (GET {url}/models: HTTP 404); a vLLM server's "
                              f"base URL ends in /v1, e.g. vllm/{served}@http://HOST:8000/v1")
    if resp.status_code != 200:  # e.g. 401 from a server started with --api-key: the model list is not ours to see
        return
    try:
        served_ids = [str(m["id"]) for m in resp.json()["data"]]
    except (ValueError, KeyError, TypeError):
        return
    if served_ids and served not in served_ids:
        raise ModelCheckError(f"the vLLM server at {url} serves {', '.join(served_ids)}, not {served!r}: use "
                              f"vllm/{served_ids[0]}@{url}")


def litellm_endpoint(name: str) -> tuple[str, str] | None:
    """(base URL, where it was configured) for a LiteLLM model whose endpoint the user set — `litellm.api_base`, or
    the provider's <PROVIDER>_API_BASE / <PROVIDER>_BASE_URL environment variable, as LiteLLM reads them — or whose
    default endpoint is on this machine (e.g. ollama). None otherwise."""
    from ._remote import _litellm

    litellm = _litellm()
    try:
        _, provider, _, routed = litellm.get_llm_provider(name)
    except Exception:  # LiteLLM cannot route the name: the first call says so
        return None
    if getattr(litellm, "api_base", None):
        return str(litellm.api_base), "litellm.api_base"
    prefix = provider.upper()
    order = ("BASE_URL", "API_BASE") if provider == "openai" else ("API_BASE", "BASE_URL")  # LiteLLM's own order
    for suffix in order:
        var = f"{prefix}_{suffix}"
        if os.environ.get(var):
            return os.environ[var], var
    if routed and _is_loopback(urlsplit(routed).hostname):
        return routed, f"LiteLLM's default for {provider}"
    return None


def _probe_tcp(url: str, source: str, timeout: float) -> None:
    """Open and close a TCP connection to the endpoint: nothing is sent, so nothing can be billed."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise ModelCheckError(f"{source} is {url!r}, which is not a URL; set it to the provider's base URL, "
                              f"e.g. http://127.0.0.1:8000/v1")
    if _behind_proxy(url, host):
        return  # the calls go through the proxy: connecting directly would prove nothing
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except socket.gaierror:
        raise ProviderUnreachable(f"cannot connect to the provider at {url}: the host name {host!r} does not "
                                  f"resolve; correct {source} or check the network") from None
    except OSError as err:
        why = f"no answer within {timeout:g} s" if isinstance(err, TimeoutError) else _reason(err)
        raise ProviderUnreachable(f"cannot connect to the provider at {url} ({why}): start the server or "
                                  f"correct {source}") from None


def _behind_proxy(url: str, host: str) -> bool:
    scheme = urlsplit(url).scheme
    proxies = urllib.request.getproxies()
    return bool(proxies.get(scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(host)


def _is_loopback(host: str | None) -> bool:
    return host in ("localhost", "127.0.0.1", "::1") or bool(host and host.startswith("127."))


def _reason(err: BaseException) -> str:
    """'connection refused', 'timed out', ...: the innermost cause's words."""
    seen = {id(err)}
    while (inner := err.__cause__ or err.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        err = inner
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return text.split("] ", 1)[-1].lower()
