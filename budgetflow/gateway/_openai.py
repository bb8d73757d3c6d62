"""The OpenAI wire format on both sides of the gateway: a request body becomes the model layer's call options, and a
settled Generation (or its stream of Deltas) becomes an OpenAI response (or SSE chunks) carrying the metered usage."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from ..llm import Delta, Generation

# accepted and passed on as the model layer's options
_CALL_FIELDS = {"model", "messages", "prompt", "max_tokens", "max_completion_tokens", "n", "temperature", "top_p",
                "stop", "tools", "tool_choice", "response_format", "logprobs", "top_logprobs", "stream",
                "stream_options", "min_tokens"}
# accepted, without effect here: said in the x-budgetflow-ignored header rather than refused, since most clients
# send some of them by default
_IGNORED_FIELDS = {"seed", "user", "presence_penalty", "frequency_penalty", "parallel_tool_calls", "metadata", "store",
                   "logit_bias", "service_tier", "modalities", "reasoning_effort", "prediction", "echo", "best_of",
                   "suffix", "functions", "function_call", "top_k", "repetition_penalty", "min_p"}
MAX_N = 16


class RequestError(ValueError):
    """The request body is not a call this gateway can make (HTTP 400, OpenAI's invalid_request_error)."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


def _number(body: dict, key: str, default: float, low: float, high: float) -> float:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise RequestError(f"{key} must be a number from {low:g} to {high:g}, got {value!r}", key)
    return float(value)


def _integer(body: dict, key: str, low: int, high: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RequestError(f"{key} must be an integer from {low} to {high}, got {value!r}", key)
    return value


def call_options(body: dict, *, chat: bool, default_max_tokens: int) -> tuple[Any, dict, list[str]]:
    """(prompt, options for generate/astream, the fields ignored). Raises RequestError for a malformed body."""
    if chat:
        prompt = body.get("messages")
        if not isinstance(prompt, list) or not prompt or not all(isinstance(m, dict) and "role" in m for m in prompt):
            raise RequestError("messages must be a non-empty list of {role, content} objects", "messages")
    else:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise RequestError("prompt must be one string (batches of prompts: send one request each)", "prompt")
    max_tokens = _integer(body, "max_completion_tokens", 1, 1 << 20) or _integer(body, "max_tokens", 1, 1 << 20)
    options: dict[str, Any] = {
        "max_tokens": max_tokens or default_max_tokens,
        "n": _integer(body, "n", 1, MAX_N) or 1,
        "temperature": _number(body, "temperature", 1.0, 0.0, 2.0),  # OpenAI's default, not budgetflow's greedy 0
        "top_p": _number(body, "top_p", 1.0, 0.0, 1.0),
    }
    min_tokens = _integer(body, "min_tokens", 1, 1 << 20)  # vLLM's extension: no EOS before this many tokens
    if min_tokens is not None:
        options["min_tokens"] = min(min_tokens, options["max_tokens"])
    stop = body.get("stop")
    if stop is not None:
        stop = [stop] if isinstance(stop, str) else stop
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop) or len(stop) > 16:
            raise RequestError("stop must be a string or a list of at most 16 strings", "stop")
        options["stop"] = stop
    for key in ("tools", "tool_choice", "response_format"):
        if body.get(key) is not None:
            if not chat:
                raise RequestError(f"{key} needs /v1/chat/completions", key)
            options[key] = body[key]
    if chat and body.get("logprobs"):
        options["logprobs"] = _integer(body, "top_logprobs", 0, 20) or 1
    elif not chat and body.get("logprobs") is not None:
        options["logprobs"] = _integer(body, "logprobs", 0, 5)
    ignored = sorted(k for k in body if k not in _CALL_FIELDS and k in _IGNORED_FIELDS)
    unknown = sorted(k for k in body if k not in _CALL_FIELDS and k not in _IGNORED_FIELDS)
    return prompt, options, ignored + unknown


def _finish(reason: str | None) -> str | None:
    """budgetflow's own reasons in OpenAI's words: a call cut at its reservation or stopped is cut short: length."""
    return "length" if reason in ("budget", "stopped") else reason


def new_id(chat: bool) -> str:
    return ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]


def usage_body(gen: Generation, key_usage: dict) -> dict:
    """OpenAI's usage, plus what the call cost and where the key stands (the `budgetflow` extension)."""
    u = gen.usage
    return {"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens,
            "total_tokens": u.input_tokens + u.output_tokens,
            "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
            "prompt_tokens_details": {"cached_tokens": u.cached_input_tokens},
            "budgetflow": {"usd": u.usd, "engine_seconds": u.engine_seconds, "max_tokens": gen.max_tokens,
                           "requested_max_tokens": gen.requested_max_tokens, "shrunk": gen.shrunk,
                           "notes": list(gen.notes), **key_usage}}


def _tool_calls(calls) -> list[dict]:
    return [{"id": c.id, "type": "function",
             "function": {"name": c.name, "arguments": c.raw_arguments or json.dumps(c.arguments)}} for c in calls]


def _logprobs(completion) -> dict | None:
    if completion.logprobs is None:
        return None
    return {"content": [{"token": t.token, "logprob": t.logprob, "bytes": list(t.token.encode()),
                         "top_logprobs": [{"token": k, "logprob": v, "bytes": list(k.encode())}
                                          for k, v in t.top.items()]} for t in completion.logprobs]}


def response_body(gen: Generation, *, chat: bool, model: str, call_id: str, key_usage: dict) -> dict:
    choices = []
    for i, c in enumerate(gen.completions):
        if chat:
            message: dict[str, Any] = {"role": "assistant", "content": c.text if c.text or not c.tool_calls else None}
            if c.tool_calls:
                message["tool_calls"] = _tool_calls(c.tool_calls)
            choices.append({"index": i, "message": message, "finish_reason": _finish(c.finish_reason),
                            "logprobs": _logprobs(c)})
        else:
            choices.append({"index": i, "text": c.text, "finish_reason": _finish(c.finish_reason), "logprobs": None})
    return {"id": call_id, "object": "chat.completion" if chat else "text_completion", "created": int(time.time()),
            "model": model, "choices": choices, "usage": usage_body(gen, key_usage)}


def chunk_body(delta: Delta, *, chat: bool, model: str, call_id: str, first: bool) -> dict:
    if chat:
        piece: dict[str, Any] = {"role": "assistant"} if first else {}
        if delta.text:
            piece["content"] = delta.text
        if delta.tool_calls:
            piece["tool_calls"] = [
                {"index": t.index, **({"id": t.id, "type": "function"} if t.id else {}),
                 "function": {**({"name": t.name} if t.name else {}), "arguments": t.arguments}}
                for t in delta.tool_calls]
        choice = {"index": delta.choice, "delta": piece, "finish_reason": _finish(delta.finish_reason),
                  "logprobs": None}
    else:
        choice = {"index": delta.choice, "text": delta.text, "finish_reason": _finish(delta.finish_reason),
                  "logprobs": None}
    return {"id": call_id, "object": "chat.completion.chunk" if chat else "text_completion", "created": int(time.time()),
            "model": model, "choices": [choice]}


def usage_chunk(gen: Generation, *, chat: bool, model: str, call_id: str, key_usage: dict) -> dict:
    """The last chunk: no choices, the metered usage (as OpenAI's stream_options include_usage sends it)."""
    return {"id": call_id, "object": "chat.completion.chunk" if chat else "text_completion", "created": int(time.time()),
            "model": model, "choices": [], "usage": usage_body(gen, key_usage)}


def sse(data: dict | str) -> bytes:
    return f"data: {data if isinstance(data, str) else json.dumps(data, separators=(',', ':'))}\n\n".encode()
