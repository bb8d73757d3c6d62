"""`BudgetedChatModel`: a LangChain chat model over any budgetflow model, every call metered on the ledger."""

from __future__ import annotations

from operator import itemgetter
from typing import Any, AsyncIterator, Iterator, Literal, Sequence

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.output_parsers import JsonOutputKeyToolsParser, JsonOutputParser, PydanticToolsParser
from langchain_core.output_parsers.pydantic import PydanticOutputParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import ConfigDict, Field, PrivateAttr

from ..budget import Account, BudgetExceeded, PriceBook
from ..llm import LLM, get_llm
from . import _lc_convert as convert

EXHAUSTED_KEY = "budgetflow_on_exhausted"


class BudgetedChatModel(BaseChatModel):
    """A LangChain chat model over a budgetflow model name (`local/...`, `vllm/...@url`, any LiteLLM name).

    Every call reserves its worst case on the account before it is sent, shrinks `max_tokens` to what the budget
    affords, and commits what it used: `usage_metadata` is the metered usage, `response_metadata["budgetflow"]` the
    spend (usd, engine seconds, what is left, notes such as a shrunk max_tokens). The account is the run's
    (`config={"configurable": {"budgetflow_account": account_or_name}}`) or the model's own (`account=`), so one
    compiled graph can run many tasks, each on its own account.

    When the budget refuses a call (nothing sent), the model answers with a message that says so and calls no tool
    (`on_budget_exceeded="message"`, the default: an agent loop ends cleanly on it), or raises `BudgetExceeded`
    (`"raise"`)."""

    model: str = Field(default="local/smollm2-135m", description="a budgetflow model name")
    account: Any = Field(default=None, exclude=True, description="the Account charged when the run names none")
    ledger: Any = Field(default=None, exclude=True, description="where account names given in the config live")
    prices: Any = Field(default=None, exclude=True, description="the PriceBook that prices the model")
    llm: Any = Field(default=None, exclude=True, description="an LLM instance to use instead of get_llm(model)")
    llm_options: dict[str, Any] = Field(default_factory=dict, description="options for get_llm")
    max_tokens: int = 256
    min_tokens: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    stop: list[str] | None = None
    on_budget_exceeded: Literal["message", "raise"] = "message"

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())
    _resolved: Any = PrivateAttr(default=None)

    # ------------------------------------------------------------------ identity

    @property
    def _llm_type(self) -> str:
        return "budgetflow"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "max_tokens": self.max_tokens, "temperature": self.temperature}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params.update(ls_provider="budgetflow", ls_model_name=kwargs.get("model") or self.model,
                      ls_max_tokens=self.max_tokens,
                      ls_temperature=self.temperature)
        return params

    def _model(self, name: str | None = None) -> LLM:
        """The model layer's LLM: `llm=`, or get_llm(model) — or get_llm of a per-call `model=` override."""
        if name and name != self.model:
            return get_llm(name, prices=self.prices or PriceBook(), **self.llm_options)
        if self.llm is not None:
            return self.llm
        if self._resolved is None:
            self._resolved = get_llm(self.model, prices=self.prices or PriceBook(), **self.llm_options)
        return self._resolved

    # ------------------------------------------------------------------ the account travels with the run's config

    def _with_account(self, config: RunnableConfig | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        if convert.ACCOUNT_KEY in kwargs:
            return kwargs
        account = convert.account_from(config, None, self.ledger)
        return {**kwargs, convert.ACCOUNT_KEY: account} if account is not None else kwargs

    def invoke(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
               stop: list[str] | None = None, **kwargs: Any) -> AIMessage:
        return super().invoke(input, config, stop=stop, **self._with_account(config, kwargs))

    async def ainvoke(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
                      stop: list[str] | None = None, **kwargs: Any) -> AIMessage:
        return await super().ainvoke(input, config, stop=stop, **self._with_account(config, kwargs))

    def stream(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
               stop: list[str] | None = None, **kwargs: Any) -> Iterator[Any]:
        return super().stream(input, config, stop=stop, **self._with_account(config, kwargs))

    def astream(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
                stop: list[str] | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        return super().astream(input, config, stop=stop, **self._with_account(config, kwargs))

    # ------------------------------------------------------------------ one call

    def _call(self, messages: list[BaseMessage], stop: list[str] | None,
              kwargs: dict[str, Any]) -> tuple[LLM, Account, list[dict], dict[str, Any], bool]:
        account = kwargs.get(convert.ACCOUNT_KEY) or self.account
        if account is None:
            raise ValueError("BudgetedChatModel: no account to charge. Pass account= to the model, or run it with "
                             "config={'configurable': {'budgetflow_account': account}}")
        account = convert.resolve_account(account, self.ledger)
        options = {"max_tokens": self.max_tokens, "temperature": self.temperature, "top_p": self.top_p,
                   "min_tokens": self.min_tokens, **convert.pop_options(kwargs)}
        stops = stop or self.stop
        if stops:
            options["stop"] = list(stops)
        raising = kwargs.get(EXHAUSTED_KEY, self.on_budget_exceeded) == "raise"
        return self._model(kwargs.get("model")), account, convert.openai_messages(messages), options, raising

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        llm, account, prompt, options, raising = self._call(messages, stop, kwargs)
        try:
            gen = llm.generate(prompt, account=account, **options)
        except BudgetExceeded as err:
            if raising:
                raise
            return ChatResult(generations=[ChatGeneration(message=convert.exhausted_message(err, self.model))])
        return ChatResult(generations=[ChatGeneration(message=convert.ai_message(gen, account))])

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        llm, account, prompt, options, raising = self._call(messages, stop, kwargs)
        try:
            gen = await llm.agenerate(prompt, account=account, **options)
        except BudgetExceeded as err:
            if raising:
                raise
            return ChatResult(generations=[ChatGeneration(message=convert.exhausted_message(err, self.model))])
        return ChatResult(generations=[ChatGeneration(message=convert.ai_message(gen, account))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        llm, account, prompt, options, raising = self._call(messages, stop, kwargs)
        try:
            stream = llm.stream(prompt, account=account, **options)
        except BudgetExceeded as err:
            if raising:
                raise
            yield ChatGenerationChunk(message=convert.exhausted_message(err, self.model, chunk=True))
            return
        with stream:  # a consumer that stops early closes this generator: the call is cut and charged what it used
            for delta in stream:
                chunk = ChatGenerationChunk(message=convert.delta_chunk(delta))
                if run_manager:
                    run_manager.on_llm_new_token(delta.text, chunk=chunk)
                yield chunk
        assert stream.generation is not None
        yield ChatGenerationChunk(message=convert.final_chunk(stream.generation, account))

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        llm, account, prompt, options, raising = self._call(messages, stop, kwargs)
        stream = llm.astream(prompt, account=account, **options)
        try:
            async with stream:
                async for delta in stream:
                    chunk = ChatGenerationChunk(message=convert.delta_chunk(delta))
                    if run_manager:
                        await run_manager.on_llm_new_token(delta.text, chunk=chunk)
                    yield chunk
        except BudgetExceeded as err:  # an async stream reserves on its first step
            if raising:
                raise
            yield ChatGenerationChunk(message=convert.exhausted_message(err, self.model, chunk=True))
            return
        assert stream.generation is not None
        yield ChatGenerationChunk(message=convert.final_chunk(stream.generation, account))

    # ------------------------------------------------------------------ tools and structured output

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None,
                   **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        """`tool_choice`: "auto" (the model decides; needs a model that supports it), "any"/"required", "none", or
        a tool's name (a forced call, which every local model supports)."""
        formatted = convert.openai_tools(tools)
        choice = convert.openai_tool_choice(tool_choice, formatted)
        return self.bind(tools=formatted, **({"tool_choice": choice} if choice is not None else {}), **kwargs)

    def with_structured_output(self, schema: dict | type, *, include_raw: bool = False,
                               method: Literal["function_calling", "json_schema", "json_mode"] = "function_calling",
                               strict: bool | None = None, **kwargs: Any) -> Runnable[LanguageModelInput, Any]:
        """The answer parsed into `schema` (a pydantic class, a TypedDict, a JSON schema or an OpenAI tool).
        function_calling forces a call of one tool whose parameters are the schema; json_schema constrains the
        answer's text to it (response_format); both are enforced by structured outputs on the local engine. A
        refusal by the budget raises BudgetExceeded here (there is no answer to parse)."""
        if kwargs:
            raise ValueError(f"unsupported arguments {sorted(kwargs)}")
        pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
        traced = {"ls_structured_output_format": {"kwargs": {"method": method}, "schema": schema}}  # for callbacks
        if method == "function_calling":
            name = convert_to_openai_tool(schema)["function"]["name"]
            llm = self.bind_tools([schema], tool_choice=name, **{EXHAUSTED_KEY: "raise"}, **traced)
            parser: Runnable = (PydanticToolsParser(tools=[schema], first_tool_only=True) if pydantic  # type: ignore[list-item]
                                else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True))
        elif method in ("json_schema", "json_mode"):
            if method == "json_mode":
                response_format: dict[str, Any] = {"type": "json_object"}
            else:
                json_schema = convert_to_json_schema(schema)
                response_format = {"type": "json_schema", "json_schema": {
                    "name": json_schema.get("title", "answer"), "schema": json_schema}}
            llm = self.bind(response_format=response_format, **{EXHAUSTED_KEY: "raise"}, **traced)
            parser = PydanticOutputParser(pydantic_object=schema) if pydantic else JsonOutputParser()  # type: ignore[arg-type]
        else:
            raise ValueError(f"method must be function_calling, json_schema or json_mode, got {method!r}")
        if not include_raw:
            return llm | parser
        parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
        fallback = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parsed.with_fallbacks([fallback], exception_key="parsing_error")


__all__ = ["BudgetedChatModel", "EXHAUSTED_KEY"]
