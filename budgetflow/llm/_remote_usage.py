"""Reading what a LiteLLM response says it cost, and what a failed call says about whether the provider did work."""

from __future__ import annotations

from typing import Any


def _provider_reported_usage(stream: Any) -> bool:
    """Whether the provider itself sent a usage report. LiteLLM's stream wrapper makes one up from its own token
    estimate when the provider sent none (stream_chunk_builder → calculate_usage → token_counter), so the usage the
    caller sees proves nothing; the chunks the wrapper recorded from the provider do. If they cannot be read (a
    LiteLLM that keeps them elsewhere), the report counts as missing: charged as reserved, never under."""
    chunks = getattr(stream, "chunks", None)
    if not isinstance(chunks, list):
        return False
    return any(_get(c, "usage") is not None for c in chunks)


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


def _count(obj: Any, *keys: str) -> int:
    for key in keys:
        value = _get(obj, key) if obj is not None else None
        if isinstance(value, (int, float)) and value > 0:
            return int(value)
    return 0


def _usage_parts(usage: Any) -> dict[str, int]:
    """PriceBook.cost() arguments from a LiteLLM usage (prompt_tokens includes cache reads and writes)."""
    inp, out = _count(usage, "prompt_tokens"), _count(usage, "completion_tokens")
    pdet, cdet = _get(usage, "prompt_tokens_details"), _get(usage, "completion_tokens_details")
    cached = min(_count(pdet, "cached_tokens") or _count(usage, "cache_read_input_tokens"), inp)
    write = min(_count(pdet, "cache_write_tokens", "cache_creation_tokens")
                or _count(usage, "cache_creation_input_tokens"), inp - cached)
    ttl = _get(pdet, "cache_creation_token_details") if pdet is not None else None
    write_1h = min(_count(ttl, "ephemeral_1h_input_tokens"), write)
    write_12h = min(_count(ttl, "ephemeral_12h_input_tokens"), write - write_1h)
    # audio/image counts may overlap the cached ones: bill what is left at their rate (never the same token twice)
    left = inp - cached - write
    audio_in = min(_count(pdet, "audio_tokens"), left)
    image_in = min(_count(pdet, "image_tokens"), left - audio_in)
    reasoning = min(_count(cdet, "reasoning_tokens"), out)
    audio_out = min(_count(cdet, "audio_tokens"), out - reasoning)
    image_out = min(_count(cdet, "image_tokens"), out - reasoning - audio_out)
    return dict(input_tokens=inp, output_tokens=out, cached_input_tokens=cached, cache_write_tokens=write,
                cache_write_1h_tokens=write_1h, cache_write_12h_tokens=write_12h, input_audio_tokens=audio_in,
                input_image_tokens=image_in, reasoning_tokens=reasoning, output_audio_tokens=audio_out,
                output_image_tokens=image_out)


def _status(err: BaseException) -> int | None:
    status = getattr(err, "status_code", None)
    if not isinstance(status, int):
        status = getattr(getattr(err, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _never_connected(err: BaseException) -> bool:
    """Whether the request provably never reached the provider: the TCP/TLS connection was never established."""
    import httpx

    seen: set[int] = set()
    stack: list[BaseException | None] = [err]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, (httpx.ConnectError, httpx.ConnectTimeout, ConnectionRefusedError)):
            return True
        # the explicit cause, else the implicit context (Python's own rule for what led to an error)
        stack += [e.__cause__ if e.__cause__ is not None or e.__suppress_context__ else e.__context__,
                  getattr(e, "original_exception", None)]
    return False


# HTTP statuses that mean the provider refused the request before generating anything
REFUSED = {400, 401, 403, 404, 413, 422}


def classify_failure(err: BaseException) -> str:
    """What a failed provider call says about its cost: "free" when the provider provably did no work (never
    connected, HTTP 429, a refusal before generating: 400-422), else "unknown" (408, 5xx, timeouts, dropped or
    malformed responses: the work may have been done and billed; charge it as reserved)."""
    status = _status(err)
    if _never_connected(err) or status == 429 or status in REFUSED:
        return "free"
    return "unknown"
