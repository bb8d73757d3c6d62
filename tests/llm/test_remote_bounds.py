"""Issue 11, classes 2 and 3: a remote (LiteLLM) call reserves a provable upper bound of what it is billed, and a $0
price is no price.

Every call goes to the real vLLM server (SmolLM2 on the CPU) through LiteLLM (`openai/smollm2-135m` + api_base).
The loopback fault proxy in front of it only does what a real provider does and this server cannot: render tool
schemas into the prompt, bill reasoning tokens, drop the usage report, answer an error after the work. The CJK case
needs no fake: the server's byte-level BPE tokenizer and LiteLLM's counter disagree on their own.

The invariant every test asserts (`_assert_within_cap`): after the call, committed + held ≤ cap; committed ≥ what
the provider billed (computed here from the rates, independently of budgetflow); no overrun recorded.
"""

from __future__ import annotations

import socket

import litellm
import pytest

from budgetflow import Budget, BudgetExceeded, PriceBook, UnpricedModel
from budgetflow.llm import LiteLLMModel, LLMError

from .fault_proxy import FaultProxy

MODEL = "openai/smollm2-135m"
PROMPT = "Write a Python function that adds two numbers."
# Korean and Japanese: SmolLM2's tokenizer needs ~1.3-1.8x the tokens LiteLLM's counter gives this text
CJK = "다람쥐 헌 쳇바퀴에 타고파. 한국어 문장입니다. 吾輩は猫である。名前はまだ無い。" * 12
BIG_TOOLS = [{"type": "function", "function": {
    "name": f"tool_{i}", "description": f"Tool number {i}: looks things up in catalogue {i}. " * 4,
    "parameters": {"type": "object", "properties": {
        f"arg_{j}": {"type": "string", "description": f"argument {j} of tool {i}"} for j in range(6)}}}}
    for i in range(6)]


# ------------------------------------------------------------------------------------------------------ helpers


def _root(ledger, name: str, budget: Budget):
    """The one place that knows how a capped root account is made (`ledger.root` once the ledger has it)."""
    make = getattr(ledger, "root", None)
    return make(name, budget) if make is not None else ledger.account(name, budget)


def _account(ledger, usd: float):
    return _root(ledger, "run", Budget(usd=usd)).child("task")


def _overruns(ledger) -> list:
    """Amounts billed beyond a reservation: a separate `overrun` entry, or (older ledgers) a note on the commit."""
    return [e for e in ledger.entries() if e.kind == "overrun" or "overrun" in (e.note or "")]


def _billed(usage: dict, rates: dict[str, float]) -> float:
    """What the provider bills for a usage report, USD, from per-million rates (the reference, not budgetflow's)."""
    p, c = usage["prompt_tokens"], usage["completion_tokens"]
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    written = (usage.get("prompt_tokens_details") or {}).get("cache_write_tokens") or 0
    return ((p - written) * rates["input"] + written * rates.get("cache_write", rates["input"])
            + (c - reasoning) * rates["output"] + reasoning * rates.get("reasoning", rates["output"])) / 1e6


def _assert_within_cap(ledger, account, cap: float, proxy: FaultProxy, rates: dict[str, float]) -> None:
    spent, held = account.spent(), account.held()
    assert spent.usd + held.usd <= cap * (1 + 1e-9), f"cap ${cap} exceeded: {spent.usd + held.usd}"
    assert held.usd == 0
    billed = sum(_billed(u, rates) for u in proxy.reported_usage)
    assert spent.usd >= billed * (1 - 1e-6), f"committed ${spent.usd} < billed ${billed}"
    assert spent.input_tokens >= sum(u["prompt_tokens"] for u in proxy.reported_usage)
    assert spent.output_tokens >= sum(u["completion_tokens"] for u in proxy.reported_usage)
    assert not _overruns(ledger)


def _book(**rates: float) -> PriceBook:
    book = PriceBook()
    book.set(MODEL, **{f"{k}_per_million": v for k, v in rates.items()})
    return book


def _model(proxy: FaultProxy, prices: PriceBook, **kw) -> LiteLLMModel:
    return LiteLLMModel(MODEL, prices=prices, api_base=proxy.url, api_key="local", backoff=0.05, **kw)


def _settlements(ledger) -> list:
    return [e for e in ledger.entries(account="task") if e.kind != "open"]


@pytest.fixture
def proxy(smol_server):
    with FaultProxy(smol_server.root_url) as p:
        yield p


# ------------------------------------------------------------------------------------ class 2: tools not counted


def test_issue11_class2_tools_in_extra_are_counted(proxy, ledger):
    """issue 11 class 2: tools passed through `extra=` were not counted in the prompt estimate (14.7x the cap)."""
    rates = {"input": 20.0, "output": 1.0}
    account = _account(ledger, 1.0)
    proxy.modes.append("tools-in-prompt")
    gen = _model(proxy, _book(**rates), extra={"tools": BIG_TOOLS}).generate(PROMPT, account=account, max_tokens=16)
    assert proxy.reported_usage[0]["prompt_tokens"] > 1000  # the provider billed the schemas
    _assert_within_cap(ledger, account, 1.0, proxy, rates)
    assert gen.completions[0].finish_reason is not None


def test_issue11_class2_tools_argument_with_n_and_tool_choice(proxy, ledger):
    """issue 11 class 2 (neighbour): first-class tools= / tool_choice= with n > 1 are counted, text still works."""
    rates = {"input": 20.0, "output": 1.0}
    account = _account(ledger, 1.0)
    proxy.modes.append("tools-in-prompt")
    gen = _model(proxy, _book(**rates)).generate(PROMPT, account=account, n=3, max_tokens=12, temperature=0.7,
                                                 tools=BIG_TOOLS, tool_choice="auto")
    assert len(gen.completions) == 3 and all(c.text for c in gen.completions)
    sent = proxy.requests[0]
    assert sent["tools"] == BIG_TOOLS and sent["tool_choice"] == "auto"
    _assert_within_cap(ledger, account, 1.0, proxy, rates)


def test_issue11_class2_response_format_and_functions_in_extra_are_counted(proxy, ledger):
    """issue 11 class 2: functions / response_format through `extra=` are counted like tools."""
    rates = {"input": 20.0, "output": 1.0}
    account = _account(ledger, 1.0)
    functions = [t["function"] for t in BIG_TOOLS[:3]]
    schema = {"type": "json_schema",
              "json_schema": {"name": "answer", "schema": BIG_TOOLS[4]["function"]["parameters"]}}
    proxy.modes.append("tools-in-prompt")
    _model(proxy, _book(**rates), extra={"functions": functions, "response_format": schema}).generate(
        PROMPT, account=account, max_tokens=16)
    assert proxy.reported_usage[0]["prompt_tokens"] > 600
    _assert_within_cap(ledger, account, 1.0, proxy, rates)


def test_issue11_class2_fallback_to_a_pricier_model_with_tools(proxy, smol_server, ledger):
    """issue 11 class 2 (neighbour): a fallback model is reserved at its own, higher prices, tools counted."""
    cheap, pricey = {"input": 2.0, "output": 1.0}, {"input": 20.0, "output": 10.0}
    book = _book(**cheap)
    book.set("openai/smollm2-pricey", input_per_million=pricey["input"], output_per_million=pricey["output"])
    account = _account(ledger, 1.0)
    proxy.modes.append("429")  # the primary refuses: nothing done, nothing charged
    with FaultProxy(smol_server.root_url, served_model="smollm2-135m") as second:
        second.modes.append("tools-in-prompt")
        model = LiteLLMModel(MODEL, prices=book, api_base=proxy.url, api_key="x", max_retries=0, extra={
            "tools": BIG_TOOLS}, fallbacks=[{"model": "openai/smollm2-pricey", "api_base": second.url, "api_key": "x"}])
        gen = model.generate(PROMPT, account=account, max_tokens=16)
        assert gen.attempts == 2 and gen.model == "openai/smollm2-pricey" and proxy.forwarded == 0
        entries = _settlements(ledger)
        assert [e.kind for e in entries] == ["reserve", "release", "reserve", "commit"]
        assert entries[2].amounts["usd"] > entries[0].amounts["usd"] * 5  # reserved at the fallback's prices
        _assert_within_cap(ledger, account, 1.0, second, pricey)


# ------------------------------------------------------------------------ class 2: the prompt margin was a guess


def test_issue11_class2_cjk_prompt_on_a_byte_level_tokenizer(proxy, ledger):
    """issue 11 class 2: the prompt margin (x1.25 + 64 over LiteLLM's count) is not an upper bound — a CJK prompt
    on the server's byte-level BPE needs more tokens than LiteLLM counts. No fake: the real server's count."""
    rates = {"input": 20.0, "output": 1.0}
    account = _account(ledger, 1.0)
    estimate = litellm.token_counter(model=MODEL, messages=[{"role": "user", "content": CJK}])
    _model(proxy, _book(**rates)).generate(CJK, account=account, max_tokens=8)
    assert proxy.reported_usage[0]["prompt_tokens"] > 1.25 * estimate + 64  # the old margin would not cover it
    _assert_within_cap(ledger, account, 1.0, proxy, rates)


def test_issue11_class2_cjk_multipart_system_and_names(proxy, ledger):
    """issue 11 class 2 (neighbour): multi-part content, a system message and `name` fields are all counted."""
    rates = {"input": 20.0, "output": 1.0}
    account = _account(ledger, 1.0)
    half = len(CJK) // 2
    messages = [{"role": "system", "content": "答えは短く。", "name": "規則"},
                {"role": "user", "name": "利用者", "content": [{"type": "text", "text": CJK[:half]},
                                                            {"type": "text", "text": CJK[half:]}]}]
    _model(proxy, _book(**rates)).generate(messages, account=account, max_tokens=8)
    _assert_within_cap(ledger, account, 1.0, proxy, rates)


def test_issue11_class2_tight_cap_shrinks_max_tokens_instead_of_overrunning(proxy, ledger):
    """issue 11 class 2 (neighbour): a cap that affords only a few output tokens beyond the prompt bound: the call
    is shrunk to fit the provable bound, and the bill stays inside the cap."""
    rates = {"input": 20.0, "output": 10.0}
    book = _book(**rates)
    model = _model(proxy, book)
    bound = model.prompt_bound(CJK)
    # half an output token more than 6 tokens' worst case (the ledger rounds caps down and amounts up)
    cap = book.worst_cost(MODEL, input_tokens=bound, output_tokens=6) + 0.5 * rates["output"] / 1e6
    account = _account(ledger, cap)
    gen = model.generate(CJK, account=account, max_tokens=64)
    assert gen.max_tokens == 6 and proxy.requests[0]["max_completion_tokens"] == 6
    _assert_within_cap(ledger, account, cap, proxy, rates)


def test_issue11_class2_an_image_is_reserved_at_its_worst_case(proxy, ledger):
    """issue 11 class 2 (neighbour): an image in a message is bounded per image (~48k tokens), not by its bytes:
    a cap that cannot afford that refuses the call before anything is sent."""
    pixel = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
             "AAAABJRU5ErkJggg==")
    messages = [{"role": "user", "content": [{"type": "text", "text": "What is in this image?"},
                                             {"type": "image_url", "image_url": {"url": pixel, "detail": "high"}}]}]
    account = _account(ledger, 0.02)  # $1/M input: 48k tokens are $0.048
    with pytest.raises(BudgetExceeded):
        _model(proxy, _book(input=1.0, output=2.0)).generate(messages, account=account, max_tokens=16)
    assert proxy.received == 0 and account.spent().usd == 0 and account.held().usd == 0


# ---------------------------------------------------------------------------- class 2: reasoning tokens


def test_issue11_class2_reasoning_rate_above_output_rate_real_map_entry(proxy, ledger):
    """issue 11 class 2: the worst case priced output at the output rate, while reasoning can cost more. Priced by
    a real LiteLLM map entry whose reasoning rate is 3.3x its output rate (dashscope/qwen-plus-2025-04-28)."""
    entry = litellm.model_cost["dashscope/qwen-plus-2025-04-28"]
    rates = {"input": entry["input_cost_per_token"] * 1e6, "output": entry["output_cost_per_token"] * 1e6,
             "reasoning": entry["output_cost_per_reasoning_token"] * 1e6}
    assert rates["reasoning"] > 3 * rates["output"]
    book = PriceBook({MODEL: PriceBook().price("dashscope/qwen-plus-2025-04-28")})
    account = _account(ledger, 1.0)
    proxy.modes.append("reasoning")  # every completion token is a reasoning token
    _model(proxy, book).generate(PROMPT, account=account, max_tokens=64)
    assert proxy.reported_usage[0]["completion_tokens_details"]["reasoning_tokens"] > 0
    _assert_within_cap(ledger, account, 1.0, proxy, rates)


@pytest.mark.parametrize("n", [1, 3])
def test_issue11_class2_reasoning_beyond_max_tokens(proxy, ledger, n):
    """issue 11 class 2: a provider that bills reasoning beyond `max_tokens` (reasoning models count against
    `max_completion_tokens`) gave 6.1x. budgetflow sends max_completion_tokens, so reasoning is inside the cap."""
    rates = {"input": 1.0, "output": 10.0}
    account = _account(ledger, 1.0)
    proxy.modes.append("reasoning-beyond:200")
    _model(proxy, _book(**rates)).generate(PROMPT, account=account, n=n, max_tokens=16, temperature=0.7)
    sent = proxy.requests[0]
    assert sent.get("max_completion_tokens") == 16 and "max_tokens" not in sent
    assert proxy.reported_usage[0]["completion_tokens"] <= n * 16
    _assert_within_cap(ledger, account, 1.0, proxy, rates)


@pytest.mark.parametrize("route", ["openai", "hosted_vllm"])
def test_max_completion_tokens_reaches_the_real_vllm_server(proxy, ledger, route):
    """LiteLLM forwards max_completion_tokens on the openai-compatible routes, and vLLM honours it."""
    name = f"{route}/smollm2-135m"
    book = PriceBook({name: {"input_per_million": 1.0, "output_per_million": 2.0}})
    account = _account(ledger, 1.0)
    gen = LiteLLMModel(name, prices=book, api_base=proxy.url, api_key="x").generate(PROMPT, account=account,
                                                                                   max_tokens=9)
    assert proxy.requests[0]["max_completion_tokens"] == 9
    assert proxy.upstream_usage[0]["completion_tokens"] <= 9 and gen.completions[0].finish_reason == "length"


# ------------------------------------------------------------------- class 2: a stream with no usage report


def test_issue11_class2_stream_without_usage_report_is_charged_as_reserved(proxy, ledger, counters):
    """issue 11 class 2: a stream that ends without a usage report was charged LiteLLM's estimate (LiteLLM makes
    one up from its token counter), not the reservation."""
    rates = {"input": 20.0, "output": 1.0}
    account = _account(ledger, 1.0)
    before = counters.read()
    proxy.modes.append("strip-usage")
    gen = _model(proxy, _book(**rates)).generate(CJK, account=account, max_tokens=16)
    entries = _settlements(ledger)
    assert [e.kind for e in entries] == ["reserve", "commit", "reserve", "commit"]
    assert entries[1].amounts == entries[0].amounts  # unknown outcome: charged in full, as reserved
    assert "usage report" in gen.notes[0]
    # both attempts' real work is covered: what the server did (its own counters) is within what was charged
    done = counters.delta(before)
    assert account.spent().input_tokens >= done["prompt"] and account.spent().output_tokens >= done["generation"]
    assert account.spent().usd >= sum(_billed(u, rates) for u in proxy.upstream_usage)
    _assert_within_cap(ledger, account, 1.0, proxy, rates)


# -------------------------------------------------------------------- class 2: errors after the work was done


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
def test_issue11_class2_error_after_the_work_is_charged_in_full(proxy, ledger, status):
    """issue 11 class 2: errors returned after the provider did the work (408, 5xx from gateways) were released
    as free. Now only a provable no-work answer is released."""
    rates = {"input": 1.0, "output": 2.0}
    account = _account(ledger, 1.0)
    proxy.modes.append(f"after:{status}")
    gen = _model(proxy, _book(**rates)).generate(PROMPT, account=account, max_tokens=16)
    assert gen.attempts == 2 and proxy.forwarded == 2
    entries = _settlements(ledger)
    assert [e.kind for e in entries] == ["reserve", "commit", "reserve", "commit"]
    assert entries[1].amounts == entries[0].amounts
    assert account.spent().usd >= sum(_billed(u, rates) for u in proxy.upstream_usage)  # the failed attempt's work
    _assert_within_cap(ledger, account, 1.0, proxy, rates)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_refused_before_any_work_is_released(proxy, ledger, status):
    account = _account(ledger, 1.0)
    proxy.modes.append(str(status))
    with pytest.raises(LLMError, match="refused"):
        _model(proxy, _book(input=1.0, output=2.0)).generate(PROMPT, account=account, max_tokens=16)
    assert proxy.forwarded == 0 and [e.kind for e in _settlements(ledger)] == ["reserve", "release"]


def test_a_connection_never_established_is_released(ledger):
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    account = _account(ledger, 1.0)
    model = LiteLLMModel(MODEL, prices=_book(input=1.0, output=2.0), api_base=f"http://127.0.0.1:{port}/v1",
                         api_key="x", max_retries=1, backoff=0.01)
    with pytest.raises(LLMError, match="all 2 attempts failed"):
        model.generate(PROMPT, account=account, max_tokens=16)
    assert [e.kind for e in _settlements(ledger)] == ["reserve", "release", "reserve", "release"]


# -------------------------------------------------------------------------- class 2: tiers and cache writes


def test_issue11_class2_tiered_price_reserved_and_billed_at_the_prompts_tier(proxy, ledger):
    """issue 11 class 2: tiered prices (more past N prompt tokens) were ignored. Here the tier starts at 20 tokens,
    so the real prompt lands in it and every token of the request is billed at the tier's rates."""
    book = PriceBook()
    book.set(MODEL, input_per_million=1.0, output_per_million=2.0,
             tiers=[{"above_input_tokens": 20, "input_per_million": 10.0, "output_per_million": 20.0}])
    account = _account(ledger, 1.0)
    _model(proxy, book).generate(PROMPT, account=account, max_tokens=16)
    (usage,) = proxy.reported_usage
    assert usage["prompt_tokens"] > 20
    assert account.spent().usd == pytest.approx(_billed(usage, {"input": 10.0, "output": 20.0}), rel=1e-6)
    _assert_within_cap(ledger, account, 1.0, proxy, {"input": 10.0, "output": 20.0})


def test_issue11_class2_cache_writes_billed_at_the_cache_write_rate_real_map_entry(proxy, ledger):
    """issue 11 class 2: cache-write prices were ignored: a provider that writes the prompt to its cache bills it at
    the cache-write rate (claude-sonnet-4-5: 1.25x input), which the reservation and the commit must cover."""
    entry = litellm.model_cost["claude-sonnet-4-5"]
    rates = {"input": entry["input_cost_per_token"] * 1e6, "output": entry["output_cost_per_token"] * 1e6,
             "cache_write": entry["cache_creation_input_token_cost"] * 1e6}
    assert rates["cache_write"] > rates["input"]
    book = PriceBook({MODEL: PriceBook().price("claude-sonnet-4-5")})
    account = _account(ledger, 1.0)
    proxy.modes.append("cache-write")
    _model(proxy, book).generate(PROMPT, account=account, max_tokens=16)
    assert proxy.reported_usage[0]["prompt_tokens_details"]["cache_write_tokens"] > 0
    _assert_within_cap(ledger, account, 1.0, proxy, rates)


# ---------------------------------------------------------------------------------- class 3: $0 is no price


@pytest.mark.parametrize("name", ["codestral/codestral-latest", "cloudflare/@cf/mistral/mistral-7b-instruct-v0.2-lora"])
def test_issue11_class3_zero_priced_map_entry_is_refused(name):
    """issue 11 class 3: LiteLLM map entries priced at $0 were taken as real prices: the dollar cap never bound."""
    assert litellm.model_cost[name]["input_cost_per_token"] == 0
    with pytest.raises(UnpricedModel, match="allow_free"):
        LiteLLMModel(name, prices=PriceBook())


def test_issue11_class3_zero_price_override_is_an_error_allow_free_is_explicit(proxy, ledger):
    """issue 11 class 3: a user price of $0 is refused (it looks like a missing price); allow_free is the way."""
    with pytest.raises(ValueError, match="allow_free"):
        PriceBook({MODEL: {"input_per_million": 0.0, "output_per_million": 0.0}})
    account = _account(ledger, 0.000001)  # a dollar cap that free use does not touch
    gen = _model(proxy, PriceBook(allow_free=True, use_litellm=False)).generate(PROMPT, account=account,
                                                                                max_tokens=8)
    assert gen.usage.usd == 0 and account.spent().output_tokens == gen.usage.output_tokens > 0


# ------------------------------------------------------------------------------ what cannot be bounded is refused


def test_provider_side_tools_and_unbounded_fields_are_refused(proxy):
    book = _book(input=1.0, output=2.0)
    with pytest.raises(LLMError, match="provider-side tool"):
        _model(proxy, book, extra={"tools": [{"type": "web_search_preview"}]})
    with pytest.raises(LLMError, match="web search"):
        _model(proxy, book, extra={"web_search_options": {}})
    with pytest.raises(LLMError, match="service_tier"):
        _model(proxy, book, extra={"service_tier": "priority"})
    with pytest.raises(ValueError, match="max_tokens"):
        _model(proxy, book, extra={"max_tokens": 10})
    with pytest.raises(ValueError, match="max_completion_tokens"):
        _model(proxy, book, extra={"extra_body": {"max_completion_tokens": 10**6}})
    assert proxy.received == 0
