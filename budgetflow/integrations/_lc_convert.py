"""Between LangChain's message world and budgetflow's model layer: messages and tools out, Generations and Deltas back
(with the metered usage and the spend in the message's metadata), and which account a call is charged to."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, convert_to_openai_messages
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk
from langchain_core.runnables import RunnableConfig, ensure_config
from langchain_core.utils.function_calling import convert_to_openai_tool

from ..budget import Account, BudgetExceeded, Ledger
from ..llm import Delta, Generation

ACCOUNT_KEY = "budgetflow_account"  # config["configurable"][ACCOUNT_KEY]: an Account, or an account name


def openai_messages(messages: Sequence[BaseMessage]) -> list[dict]:
    out = convert_to_openai_messages(list(messages))
    for message in out:  # chat templates concatenate content: an assistant turn that only called tools has ""
        if message.get("content") is None:
            message["content"] = ""
    return out


def openai_tools(tools: Sequence[Any]) -> list[dict]:
    return [convert_to_openai_tool(t) for t in tools]


def openai_tool_choice(choice: Any, tools: list[dict]) -> Any:
    """LangChain's tool_choice spellings as the OpenAI wire format."""
    if choice is None or choice in ("auto", "none", "required"):
        return choice
    if choice in ("any", True):
        return "required"
    if isinstance(choice, str):
        return {"type": "function", "function": {"name": choice}}
    if isinstance(choice, dict):
        return choice
    raise ValueError(f"unsupported tool_choice {choice!r}: use 'auto', 'any'/'required', 'none' or a tool name")


def account_from(config: RunnableConfig | None, default: Account | None, ledger: Ledger | None) -> Account | None:
    """The run's account (config["configurable"]["budgetflow_account"]) or the model's own."""
    value = (ensure_config(config).get("configurable") or {}).get(ACCOUNT_KEY)
    return resolve_account(value, ledger) if value is not None else default


def resolve_account(value: Any, ledger: Ledger | None) -> Account:
    if isinstance(value, Account):
        return value
    if isinstance(value, str):
        if ledger is None:
            raise ValueError(f"the account {value!r} is given by name: give the model a ledger (ledger=) to find it in, "
                             f"or pass the Account itself")
        return ledger.account(value)
    raise TypeError(f"config['configurable'][{ACCOUNT_KEY!r}] must be an Account or an account name, "
                    f"got {type(value).__name__}")


def usage_metadata(gen: Generation) -> UsageMetadata:
    u = gen.usage
    return UsageMetadata(input_tokens=u.input_tokens, output_tokens=u.output_tokens,
                         total_tokens=u.input_tokens + u.output_tokens,
                         input_token_details={"cache_read": u.cached_input_tokens},
                         output_token_details={"reasoning": u.reasoning_tokens})


def spend(gen: Generation, account: Account) -> dict[str, Any]:
    """What the call cost and what it left, for response_metadata["budgetflow"]."""
    left = account.remaining().usd
    return {"account": account.name, "usd": gen.usage.usd, "engine_seconds": gen.usage.engine_seconds,
            "max_tokens": gen.max_tokens, "requested_max_tokens": gen.requested_max_tokens, "shrunk": gen.shrunk,
            "attempts": gen.attempts, "notes": list(gen.notes), "usd_left": left, "exhausted": False}


def _metadata(gen: Generation, account: Account) -> dict[str, Any]:
    return {"model_name": gen.model, "model_provider": "budgetflow",
            "finish_reason": gen.completions[0].finish_reason, "budgetflow": spend(gen, account)}


def _tool_calls(gen: Generation) -> tuple[list, list]:
    valid, invalid = [], []
    for call in gen.completions[0].tool_calls:
        if isinstance(call.arguments, dict):
            valid.append(tool_call(name=call.name, args=call.arguments, id=call.id))
        else:
            error = call.error or f"arguments must be a JSON object, got {type(call.arguments).__name__}"
            invalid.append(invalid_tool_call(name=call.name, args=call.raw_arguments, id=call.id, error=error))
    return valid, invalid


def ai_message(gen: Generation, account: Account) -> AIMessage:
    valid, invalid = _tool_calls(gen)
    return AIMessage(content=gen.text, tool_calls=valid, invalid_tool_calls=invalid, usage_metadata=usage_metadata(gen),
                     response_metadata=_metadata(gen, account))


def delta_chunk(delta: Delta) -> AIMessageChunk:
    pieces = [tool_call_chunk(name=p.name, args=p.arguments or None, id=p.id, index=p.index)
              for p in delta.tool_calls]
    return AIMessageChunk(content=delta.text, tool_call_chunks=pieces)


def final_chunk(gen: Generation, account: Account) -> AIMessageChunk:
    """The stream's last chunk: no new text, the usage and the spend (the tool calls came in the earlier chunks)."""
    return AIMessageChunk(content="", usage_metadata=usage_metadata(gen), response_metadata=_metadata(gen, account),
                          chunk_position="last")


def exhausted_metadata(err: BudgetExceeded, model: str) -> dict[str, Any]:
    return {"model_name": model, "model_provider": "budgetflow", "finish_reason": "budget_exhausted",
            "budgetflow": {"account": err.account, "usd": 0.0, "exhausted": True, "reason": str(err), "notes": []}}


def exhausted_message(err: BudgetExceeded, model: str, chunk: bool = False) -> AIMessage:
    """The answer of a call the budget refused (nothing was sent): a message without tool calls, so an agent loop
    ends cleanly and its last message says why."""
    text = f"Stopped: the budget is exhausted, so this step was not run. {err}"
    zero = UsageMetadata(input_tokens=0, output_tokens=0, total_tokens=0)
    if chunk:
        return AIMessageChunk(content=text, response_metadata=exhausted_metadata(err, model), usage_metadata=zero,
                              chunk_position="last")
    return AIMessage(content=text, response_metadata=exhausted_metadata(err, model), usage_metadata=zero)


def is_exhausted(message: Any) -> bool:
    """Whether a message is the answer of a call the budget refused."""
    meta = getattr(message, "response_metadata", None) or {}
    return bool((meta.get("budgetflow") or {}).get("exhausted"))


def pop_options(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The generate() options a binding or a call may carry (bind_tools, bind(max_tokens=...), stop=...)."""
    known = ("tools", "tool_choice", "response_format", "max_tokens", "temperature", "top_p", "min_tokens",
             "logprobs")
    return {k: kwargs[k] for k in known if kwargs.get(k) is not None}
