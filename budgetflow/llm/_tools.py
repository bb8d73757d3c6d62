"""Tool calling and structured output on the wire: checking what a caller asks for, and assembling the tool calls a
stream sends in pieces (OpenAI chat format, which vLLM and LiteLLM both speak)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from ._metering import LLMError
from ._types import Completion, ToolCall, ToolCallDelta

_TOOL_CHOICES = ("auto", "required", "none")


def check_tools(tools: list | None) -> None:
    """Only function tools can be budgeted: a provider-side tool (web search, code execution, computer use) runs and
    bills on the provider's side beyond any bound budgetflow can reserve."""
    for tool in tools or []:
        kind = tool.get("type", "function") if isinstance(tool, dict) else None
        if kind != "function":
            raise LLMError(f"tool {tool!r:.120}: only function tools can be budgeted; a provider-side tool (web "
                           f"search, code execution, computer use, ...) runs and bills on the provider's side beyond "
                           f"any bound budgetflow can reserve. Define it as a function tool you execute yourself.")


def check_tool_choice(tools: list | None, tool_choice: Any) -> None:
    if tool_choice is None:
        return
    if isinstance(tool_choice, str):
        if tool_choice not in _TOOL_CHOICES:
            raise ValueError(f"tool_choice must be one of {_TOOL_CHOICES} or {{'type': 'function', 'function': "
                             f"{{'name': ...}}}}, got {tool_choice!r}")
    elif not (isinstance(tool_choice, dict) and (tool_choice.get("function") or {}).get("name")):
        raise ValueError(f"a named tool_choice is {{'type': 'function', 'function': {{'name': ...}}}}, got "
                         f"{tool_choice!r}")
    if tool_choice != "none" and not tools:
        raise ValueError(f"tool_choice={tool_choice!r} needs tools=")
    if isinstance(tool_choice, dict):
        name = tool_choice["function"]["name"]
        if name not in {(t.get("function") or {}).get("name") for t in tools or []}:
            raise ValueError(f"tool_choice names {name!r}, which is not among the tools")


def needs_auto_tools(tools: list | None, tool_choice: Any) -> bool:
    """Whether the model must decide itself whether to call a tool (an engine needs a tool-call parser for that)."""
    return bool(tools) and tool_choice in (None, "auto")


def parse_arguments(raw: str) -> tuple[Any, str | None]:
    """(parsed JSON, None) or (None, why it does not parse)."""
    text = raw.strip() or "{}"  # a tool without parameters may stream no argument text at all
    try:
        return json.loads(text), None
    except ValueError as err:
        return None, f"arguments are not valid JSON ({err}); the raw text is kept in raw_arguments"


class ToolCallAssembler:
    """Collects the streamed pieces of one choice's tool calls (keyed by their index) into whole ToolCalls."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, Any]] = {}

    def add(self, pieces: list[dict] | None) -> list[ToolCallDelta]:
        """Absorb the `tool_calls` of one streamed delta; returns them as ToolCallDeltas for the caller."""
        out = []
        for piece in pieces or []:
            index = int(piece.get("index") or 0)
            function = piece.get("function") or {}
            call = self._calls.setdefault(index, {"id": None, "name": "", "arguments": []})
            if piece.get("id"):
                call["id"] = piece["id"]
            if function.get("name"):
                call["name"] += function["name"]
            args = function.get("arguments") or ""
            if not isinstance(args, str):  # some servers send the whole object at once
                args = json.dumps(args)
            call["arguments"].append(args)
            out.append(ToolCallDelta(index=index, id=piece.get("id"), name=function.get("name"), arguments=args))
        return out

    def calls(self, prefix: str = "call", *, cut: bool = False) -> list[ToolCall]:
        """The whole calls; `cut`: the choice ended at max_tokens, so a call with no argument text was cut before
        its arguments (not a call without parameters)."""
        result = []
        for index in sorted(self._calls):
            call = self._calls[index]
            raw = "".join(call["arguments"])
            arguments, error = parse_arguments(raw)
            if cut and not raw.strip():
                arguments, error = None, "cut at max_tokens before its arguments"
            result.append(ToolCall(id=call["id"] or f"{prefix}_{index}", name=call["name"], arguments=arguments,
                                   raw_arguments=raw, error=error))
        return result


def as_plain(obj: Any) -> Any:
    """A LiteLLM / OpenAI SDK object as plain dicts and lists (what the assembler reads)."""
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if isinstance(obj, dict):
        return {k: as_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [as_plain(v) for v in obj]
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        return as_plain(dump())
    return {k: as_plain(v) for k, v in vars(obj).items() if not k.startswith("_")}


_FENCED = re.compile(r"^\s*(?:<tool_call>|```(?:json)?)?\s*(\{.*\})\s*(?:</tool_call>|```)?\s*$", re.S)


def completion(text: str, finish: str | None, assembler: ToolCallAssembler, tools: list | None,
               tool_choice: Any, **fields: Any) -> Completion:
    """A choice's Completion. When the model was free to pick a tool ("auto") and the server's parser found no call,
    an answer that is nothing but one call of a given tool as JSON (`{"name": ..., "arguments": {...}}`, bare, fenced
    or in <tool_call> tags — how small models often write it) is read as that call: its text is the call."""
    calls = assembler.calls(cut=finish == "length")
    if not calls and tools and needs_auto_tools(tools, tool_choice):
        recovered = _call_in_text(text, tools)
        if recovered is not None:
            return Completion(text="", finish_reason="tool_calls", tool_calls=[recovered], **fields)
    return Completion(text=text, finish_reason=finish, tool_calls=calls, **fields)


def _call_in_text(text: str, tools: list) -> ToolCall | None:
    match = _FENCED.match(text)
    if not match:
        return None
    try:
        obj = json.loads(match.group(1))
    except ValueError:
        return None
    names = {(t.get("function") or {}).get("name") for t in tools if isinstance(t, dict)}
    if not isinstance(obj, dict) or obj.get("name") not in names or set(obj) - {"name", "arguments", "parameters"}:
        return None
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        args, error = parse_arguments(args)
        if error:
            return None
    if not isinstance(args, dict):
        return None
    return ToolCall(id=f"call_{uuid.uuid4().hex[:24]}", name=obj["name"], arguments=args,
                    raw_arguments=json.dumps(args))
