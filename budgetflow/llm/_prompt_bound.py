"""A provable upper bound on the prompt tokens a provider can bill for one chat request, whatever its tokenizer.

Why bytes bound tokens: a byte-level BPE token (GPT-2/tiktoken, Llama 3, Qwen, SmolLM) covers at least one byte of
the text, and so does a SentencePiece token with byte fallback (Llama 2, Mistral, Gemma) — except the one "dummy
prefix" piece SentencePiece may add in front of each separately encoded string. A tokenizer that Unicode-normalises
first (NFKC expands some characters, e.g. U+FDFA into 18) covers at least one byte of the *normalised* text, so each
string is counted at the longest of its raw, NFC, NFD, NFKC and NFKD UTF-8 forms. What no text accounts for —
chat-template special tokens, role headers, hidden system prompts, images — is added from the constants below.

JSON parts (tools, functions, tool_choice, response_format, tool_calls, unknown message fields) are rendered by a
chat template or a provider in a JSON form we do not see: they are counted at the longest usual rendering (every
non-ASCII character escaped as \\uXXXX, indented by 4 as e.g. Llama 3.1's template does); a string that is itself JSON
(a tool call's `arguments`) is counted again as the structure a template may re-serialise.

Assumed, not provable: a template's fixed text and a provider's hidden prompts fit the overheads below. Media parts
whose tokens bytes do not bound (audio, video, files/PDFs) are refused rather than guessed; images are bounded per
image.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

# ---------------------------------------------------------------------------------------------------- constants
# Every allowance the bound adds on top of counted bytes, with where its figure comes from.


@dataclass(frozen=True)
class Overhead:
    """Tokens no counted byte accounts for. Override with a larger one for a template or provider that needs it."""

    # SentencePiece's dummy prefix ("▁") may become its own token in front of every separately encoded string.
    per_segment: int = 1
    # chat-template special tokens around one message: ChatML <|im_start|>…<|im_end|>\n (≈5), Llama 3
    # <|start_header_id|>…<|end_header_id|>\n\n…<|eot_id|> (≈5), Gemma <start_of_turn>…<end_of_turn>\n (≈5),
    # Mistral [INST]…[/INST] (≈4); the role's own text is counted as bytes. 16 leaves room for separators.
    per_message: int = 16
    # per request: BOS, the generation prompt (<|im_start|>assistant\n) and default system text templates add on their
    # own, e.g. Llama 3.1's "Cutting Knowledge Date: December 2023\nToday Date: …" (≈25 tokens), SmolLM2's default
    # system prompt "You are a helpful AI assistant named SmolLM, trained by Hugging Face" (≈20).
    per_request: int = 64
    # when tools, functions or a response_format are sent: the hidden tool-use system prompt. Anthropic documents
    # 346 tokens (Claude 4 / 3.7, tool_choice auto) and up to 530 (Claude 3 Opus); open templates' tool headers
    # (Qwen2.5 "# Tools … <tools></tools>", Hermes, Llama 3.1 JSON tool instructions) are 100-300 tokens.
    tool_use: int = 1024
    # around each tool definition and each tool call in a message: wrappers such as <tool_call>…</tool_call>,
    # <|python_tag|>, [TOOL_CALLS], Anthropic's per-tool description block.
    per_tool: int = 32


DEFAULT_OVERHEAD = Overhead()

# Tokens one image may be billed at. The largest published figure: OpenAI gpt-4o-mini at detail "high" bills
# 2,833 base + 5,667 per 512-px tile, and an image scaled to 768×2048 has 8 tiles: 48,169 tokens
# (platform.openai.com/docs/guides/images-vision, "Calculating costs"). Others are smaller: Claude ≈ w·h/750
# (≤ ~1,600 after its resize), Gemini 258 per 768-px tile, gpt-4.1-mini/o4-mini ≤ 1,536 patches × 1.72, Qwen2-VL
# ≤ 16,384 at its default max_pixels.
IMAGE_TOKENS = 48_169

_IMAGE_PARTS = {"image_url", "image", "input_image", "image_file"}
_UNBOUNDED_PARTS = {"input_audio", "audio", "audio_url", "video", "video_url", "file", "input_file", "document"}
_TEXT_PARTS = {"text", "input_text"}
_FORMS = ("NFC", "NFD", "NFKC", "NFKD")


class UnboundedPrompt(ValueError):
    """The request has a part whose billed tokens budgetflow cannot bound."""


# ---------------------------------------------------------------------------------------------------- the bound


def text_bound(text: str, overhead: Overhead = DEFAULT_OVERHEAD) -> int:
    """Tokens one separately encoded string can become: its longest UTF-8 form plus the segment allowance."""
    n = len(text.encode("utf-8", "surrogatepass"))
    if not text.isascii():  # normalisation changes only non-ASCII text
        n = max(n, *(len(unicodedata.normalize(f, text).encode("utf-8", "surrogatepass")) for f in _FORMS))
    return n + overhead.per_segment


def json_bound(value: Any, overhead: Overhead = DEFAULT_OVERHEAD) -> int:
    """Tokens a JSON value can become however it is rendered (escaped or raw, compact or indented by 4)."""
    escaped = len(json.dumps(value, ensure_ascii=True, indent=4, default=str))
    raw = text_bound(json.dumps(value, ensure_ascii=False, indent=4, default=str), overhead)
    strings = list(_strings(value))
    # a template may render each string on its own (one segment each); a string holding JSON may be re-serialised
    nested = sum(json_bound(parsed, overhead) for s in strings if (parsed := _json_container(s)) is not None)
    return max(escaped, raw) + overhead.per_segment * len(strings) + nested


def prompt_token_bound(
    messages_or_prompt: str | Iterable[Mapping[str, Any]],
    *,
    tools: list | None = None,
    functions: list | None = None,
    tool_choice: Any = None,
    response_format: Any = None,
    other: Mapping[str, Any] | None = None,
    images: int = IMAGE_TOKENS,
    overhead: Overhead = DEFAULT_OVERHEAD,
) -> int:
    """An upper bound on the prompt tokens any provider can bill for this request.

    `messages_or_prompt`: a plain prompt (one user message) or OpenAI-style chat messages; every field of every
    message is counted, unknown ones included. `other`: any further request fields that may reach the prompt
    (counted as JSON). `images`: tokens per image part. Raises UnboundedPrompt for audio/video/file parts."""
    messages = [{"role": "user", "content": messages_or_prompt}] if isinstance(messages_or_prompt, str) \
        else [_as_dict(m) for m in messages_or_prompt]
    total = overhead.per_request + sum(_message_bound(m, images, overhead) for m in messages)
    tool_like = [t for t in (tools, functions) if t]
    for part in (tools, functions, tool_choice, response_format):
        if part is not None:
            total += json_bound(part, overhead)
    if tool_like or response_format is not None:  # providers emulate response_format with a tool (Anthropic)
        total += overhead.tool_use + overhead.per_tool * sum(len(t) for t in tool_like)
    if other:
        total += json_bound(dict(other), overhead)
    return total


def _message_bound(message: Mapping[str, Any], images: int, overhead: Overhead) -> int:
    total = overhead.per_message
    for key, value in message.items():
        if value is None:
            continue
        if key == "content":
            total += _content_bound(value, images, overhead)
        elif isinstance(value, str):  # role, name, tool_call_id, refusal, ...
            total += text_bound(value, overhead)
        else:  # tool_calls, function_call, audio, unknown structures
            total += json_bound(value, overhead)
            if key == "tool_calls" and isinstance(value, list):
                total += overhead.per_tool * len(value)
    return total


def _content_bound(content: Any, images: int, overhead: Overhead) -> int:
    if isinstance(content, str):
        return text_bound(content, overhead)
    if not isinstance(content, list):
        return json_bound(content, overhead)
    total = 0
    for part in content:
        part = _as_dict(part) if not isinstance(part, str) else {"type": "text", "text": part}
        kind = part.get("type")
        if kind in _UNBOUNDED_PARTS:
            raise UnboundedPrompt(
                f"a {kind!r} content part: budgetflow cannot bound the tokens a provider bills for it (its bytes do "
                f"not bound them), so it cannot reserve the call's worst case. Send the media as text or images, or "
                f"call the provider without budgetflow's guarantee.")
        if kind in _IMAGE_PARTS:
            # the pixels are billed per image, not per byte of their base64; other fields (a URL, "detail") as JSON
            rest = {k: v for k, v in part.items() if k not in ("type", "image_url", "source", "image_file")}
            total += images + overhead.per_segment + (json_bound(rest, overhead) if rest else 0)
            url = part.get("image_url")
            url = url.get("url") if isinstance(url, Mapping) else url
            if isinstance(url, str) and not url.startswith("data:"):
                total += text_bound(url, overhead)  # a provider that cannot fetch it may render the URL as text
        elif kind in _TEXT_PARTS and isinstance(part.get("text"), str):
            total += text_bound(part["text"], overhead)
            rest = {k: v for k, v in part.items() if k not in ("type", "text")}
            if rest:  # e.g. cache_control: not prompt text, but never skip what we do not know
                total += json_bound(rest, overhead)
        else:
            total += json_bound(part, overhead)
    return total


def _as_dict(item: Any) -> dict:
    if isinstance(item, Mapping):
        return dict(item)
    dump = getattr(item, "model_dump", None)  # LiteLLM / OpenAI message objects
    if callable(dump):
        return dump(exclude_none=True)
    raise TypeError(f"a chat message must be a mapping (e.g. {{'role': 'user', 'content': '...'}}), "
                    f"got {type(item).__name__}")


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def _json_container(text: str) -> Any:
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        parsed = json.loads(stripped)
    except ValueError:
        return None
    return parsed if isinstance(parsed, (dict, list)) else None
