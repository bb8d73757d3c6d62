"""`BudgetMiddleware` for LangChain 1.x agents (`langchain.agents.create_agent`): every model call is reserved on the
ledger before it is sent — with any provider class, LangChain's own included.

Why a middleware can give the guarantee: `wrap_model_call` sees the whole request before it is sent (messages,
system message, tools, tool_choice, response_format) and may change it. So it bounds the prompt by bytes
(`prompt_token_bound`, as for any remote model), sets `max_tokens` in the request's model settings (what the
provider is told bounds the output), reserves prompt + output at the model's price on the account tree — shrinking
`max_tokens` to what fits, or refusing — and, after the call, commits what the provider reported (`usage_metadata`).
LangChain's own limits (ModelCallLimitMiddleware; token budgets in general) count after each call, so the call that
crosses the limit always runs, whatever it costs.

The provider client's hidden retries would be calls no reservation covers: the middleware serves each call with a
copy of the model whose `max_retries` is 0 and retries itself, each attempt its own reservation (as LiteLLMModel
does). A call that fails with no usage report is charged as reserved; a refusal (429, 400-422) is released."""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable, Literal

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

from ..budget import Account, BudgetExceeded, Ledger, PriceBook
from ..llm import CallPlan, classify_failure, prompt_token_bound, reserve_call
from . import _lc_convert as convert
from ._lc_chat import EXHAUSTED_KEY, BudgetedChatModel

Handler = Callable[[ModelRequest], ModelResponse]
AsyncHandler = Callable[[ModelRequest], Awaitable[ModelResponse]]


class BudgetMiddleware(AgentMiddleware):
    """Reserve before each model call of a `create_agent` agent; on exhaustion end the run with a message that says
    why (`on_exhausted="end"`), raise BudgetExceeded (`"error"`), or interrupt the graph so the user can add budget
    and resume (`"interrupt"`, needs a checkpointer).

    The account is `account=` or the run's (`config={"configurable": {"budgetflow_account": ...}}`). The model is
    priced as `price_name` (default: "<provider>/<model>" from the model's LangSmith params, e.g. openai/gpt-4o-mini)
    in `prices`; a model with no price is refused. `max_tokens`: the output limit sent when the request sets none."""

    def __init__(self, account: Account | None = None, *, prices: PriceBook | None = None,
                 price_name: str | None = None, max_tokens: int = 1024, min_tokens: int = 1, retries: int = 2,
                 on_exhausted: Literal["end", "error", "interrupt"] = "end", ledger: Ledger | None = None):
        super().__init__()
        self.account, self.ledger = account, ledger
        self.prices = prices or PriceBook()
        self.price_name, self.max_tokens, self.min_tokens = price_name, max_tokens, min_tokens
        self.retries, self.on_exhausted = retries, on_exhausted
        self._quiet: dict[int, tuple[BaseChatModel, BaseChatModel]] = {}  # id → (model, its copy without retries)

    # ------------------------------------------------------------------ hooks

    def wrap_model_call(self, request: ModelRequest, handler: Handler) -> Any:
        account = self._account(request)
        if isinstance(request.model, BudgetedChatModel):  # it meters itself: hand it the run's account
            response = handler(self._charge_to(request, account))
            if self.on_exhausted == "interrupt" and _refused(response):
                self._interrupt(_refused(response))
                response = handler(self._charge_to(request, account))
            return response
        for attempt in range(1 + self.retries):
            plan, refusal = self._reserve(request, account)
            if plan is None:
                return refusal
            try:
                response = handler(self._bounded(request, plan))
            except Exception as err:
                if self._settle_failure(plan, err) or attempt == self.retries:
                    raise
                time.sleep(min(0.5 * 2 ** attempt, 8.0))
                continue
            return self._settle(plan, response, account, request)
        raise AssertionError("unreachable")

    async def awrap_model_call(self, request: ModelRequest, handler: Callable[..., Any]) -> Any:
        import asyncio

        account = self._account(request)
        if isinstance(request.model, BudgetedChatModel):
            response = await handler(self._charge_to(request, account))
            if self.on_exhausted == "interrupt" and _refused(response):
                self._interrupt(_refused(response))
                response = await handler(self._charge_to(request, account))
            return response
        for attempt in range(1 + self.retries):
            plan, refusal = self._reserve(request, account)
            if plan is None:
                return refusal
            try:
                response = await handler(self._bounded(request, plan))
            except asyncio.CancelledError:
                plan.reservation.commit(**plan.worst)  # sent and abandoned: what it cost is unknown
                raise
            except Exception as err:
                if self._settle_failure(plan, err) or attempt == self.retries:
                    raise
                await asyncio.sleep(min(0.5 * 2 ** attempt, 8.0))
                continue
            return self._settle(plan, response, account, request)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ before the call

    def _account(self, request: ModelRequest) -> Account:
        config = getattr(request.runtime, "config", None) if request.runtime is not None else None
        if config is None:
            from langgraph.config import get_config

            try:
                config = get_config()
            except RuntimeError:
                config = None
        account = convert.account_from(config, self.account, self.ledger)
        if account is None:
            raise ValueError("BudgetMiddleware: no account to charge. Pass BudgetMiddleware(account) or run the agent "
                             "with config={'configurable': {'budgetflow_account': account}}")
        return account

    def _name(self, model: BaseChatModel) -> str:
        if self.price_name:
            return self.price_name
        params = model._get_ls_params()
        provider, name = params.get("ls_provider"), params.get("ls_model_name")
        if not name:
            raise ValueError(f"cannot tell which price applies to {type(model).__name__}: pass price_name=")
        return f"{provider}/{name}" if provider else str(name)

    def _bound(self, request: ModelRequest) -> int:
        messages = ([request.system_message] if request.system_message else []) + list(request.messages)
        tools = [t if isinstance(t, dict) else convert_to_openai_tool(t) for t in request.tools]
        schema = getattr(request.response_format, "schema", request.response_format)
        if schema is not None:  # structured output goes as a tool or as a response_format: count it as both
            tools.append(_as_tool(schema))
        return prompt_token_bound(convert.openai_messages(messages), tools=tools or None,
                                  tool_choice=request.tool_choice, response_format=_as_tool(schema) if schema else None)

    def _reserve(self, request: ModelRequest, account: Account) -> tuple[CallPlan | None, Any]:
        name = self._name(request.model)
        self.prices.price(name)  # refuse an unpriced model
        prompt = self._bound(request)
        asked = request.model_settings.get("max_tokens") or getattr(request.model, "max_tokens", None) \
            or self.max_tokens

        def worst(max_tokens: int) -> dict[str, float]:
            return {"usd": self.prices.worst_cost(name, input_tokens=prompt, output_tokens=max_tokens),
                    "input_tokens": prompt, "output_tokens": max_tokens, "calls": 1}
        try:
            return reserve_call(account, worst, int(asked), self.min_tokens), None
        except BudgetExceeded as err:
            refusal = err
        if self.on_exhausted == "interrupt":
            self._interrupt(str(refusal))  # resumed: the user added budget (or gave up: then it ends as below)
            try:
                return reserve_call(account, worst, int(asked), self.min_tokens), None
            except BudgetExceeded as err:
                refusal = err
        if self.on_exhausted == "error":
            raise refusal
        return None, ModelResponse(result=[convert.exhausted_message(refusal, name)])

    @staticmethod
    def _interrupt(reason: str) -> None:
        """Hand back to the user (LangGraph interrupt; needs a checkpointer): resume after adding budget."""
        from langgraph.types import interrupt

        interrupt({"budget_exhausted": reason})

    def _quiet_model(self, model: BaseChatModel) -> BaseChatModel:
        """The model without its client's own retries (each would be a call no reservation covers) and reporting usage
        when streamed: a copy built from the fields it was given (credentials included), its SDK clients rebuilt."""
        fields = type(model).model_fields
        retries = getattr(model, "max_retries", 0)
        quiet = "max_retries" not in fields or (retries is not None and not retries)
        if quiet and ("stream_usage" not in fields or getattr(model, "stream_usage", True)):
            return model
        cached = self._quiet.get(id(model))
        if cached is None or cached[0] is not model:
            given = {name: getattr(model, name) for name in model.model_fields_set
                     if not (name.endswith("client") and not name.startswith("http"))}  # SDK clients: rebuilt
            if "max_retries" in fields:
                given["max_retries"] = 0
            if "stream_usage" in fields:  # a streamed call must report its usage too
                given["stream_usage"] = True
            cached = self._quiet[id(model)] = (model, type(model)(**given))
        return cached[1]

    def _bounded(self, request: ModelRequest, plan: CallPlan) -> ModelRequest:
        model = self._quiet_model(request.model)
        settings = {**request.model_settings, "max_tokens": plan.max_tokens}
        return request.override(model=model, model_settings=settings)

    def _charge_to(self, request: ModelRequest, account: Account) -> ModelRequest:
        settings = {**request.model_settings, convert.ACCOUNT_KEY: account}
        if self.on_exhausted == "error":
            settings[EXHAUSTED_KEY] = "raise"
        return request.override(model_settings=settings)

    # ------------------------------------------------------------------ after the call

    def _settle(self, plan: CallPlan, response: Any, account: Account, request: ModelRequest) -> Any:
        message = _ai_message(response)
        usage = getattr(message, "usage_metadata", None) if message is not None else None
        name = self._name(request.model)
        if not usage:  # no usage report: charged as reserved
            plan.reservation.commit(**plan.worst)
            usd, note = plan.worst["usd"], "the provider reported no usage: charged as reserved"
        else:
            inp, out = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
            details_in, details_out = usage.get("input_token_details") or {}, usage.get("output_token_details") or {}
            usd = self.prices.cost(name, input_tokens=inp, output_tokens=out,
                                   cached_input_tokens=min(int(details_in.get("cache_read", 0) or 0), inp),
                                   cache_write_tokens=min(int(details_in.get("cache_creation", 0) or 0), inp),
                                   reasoning_tokens=min(int(details_out.get("reasoning", 0) or 0), out))
            plan.reservation.commit(usd=usd, input_tokens=inp, output_tokens=out, calls=1)
            note = ""
        if message is not None:
            message.response_metadata["budgetflow"] = {
                "account": account.name, "usd": usd, "max_tokens": plan.max_tokens, "shrunk": bool(plan.notes),
                "notes": plan.notes + ([note] if note else []), "usd_left": account.remaining().usd,
                "exhausted": False}
        return response

    def _settle_failure(self, plan: CallPlan, err: BaseException) -> bool:
        """Settle a failed attempt; True when it must not be retried (the provider refused the request)."""
        if classify_failure(err) == "free":
            plan.reservation.release()
            return getattr(err, "status_code", None) not in (None, 429)
        plan.reservation.commit(**plan.worst)
        return False


def _as_tool(schema: Any) -> dict:
    try:
        return convert_to_openai_tool(schema)
    except Exception:
        return {"type": "function", "function": {"name": "response", "parameters": schema}}


def _refused(response: Any) -> str | None:
    message = _ai_message(response)
    if message is not None and convert.is_exhausted(message):
        return str(message.response_metadata["budgetflow"].get("reason", "the budget is exhausted"))
    return None


def _ai_message(response: Any) -> AIMessage | None:
    if isinstance(response, AIMessage):
        return response
    for message in reversed(getattr(response, "result", None) or []):
        if isinstance(message, AIMessage):
            return message
    inner = getattr(response, "model_response", None)
    return _ai_message(inner) if inner is not None else None
