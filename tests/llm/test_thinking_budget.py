"""Thinking-token budgets (issue 15): budget forcing on the real SmolLM2 engine, and a reasoning model's own field
through LiteLLM.

Every call goes to the real vLLM server. The loopback fault proxy in front of it records what each request carried
(the answer cue, the provider's reasoning field) and, in "reasoning" mode, bills the completion as reasoning tokens
as a reasoning model does; the ledger is a real SQLite file.
"""

from __future__ import annotations

import litellm
import pytest

from budgetflow import Budget, BudgetExceeded
from budgetflow.llm import ANSWER_CUE, LiteLLMModel, LLMError, VLLMEngine, budget_forced, effort_for
from budgetflow.llm._thinking import ThinkingRoute, thinking_route

from .fault_proxy import FaultProxy

MATH = ("Solve the math word problem step by step. End with a line 'The answer is N.'\n\n"
        "Problem: A farmer has 12 cows and buys 7 more, then sells 5. How many cows does he have?\n\nSolution:\n")
FEW_SHOT = ("Q: What is 2 + 2?\nWork: 2 + 2 = 4.\nThe answer is 4.\n\nQ: What is 3 + 3?\nWork: 3 + 3 = 6.\n"
            "The answer is 6.\n\nQ: What is 5 + 1?\nWork: 5 + 1 = 6.\nThe answer is 6.\n\nQ: What is 4 + 3?\nWork:")


def _commits(ledger, name: str = "task") -> list:
    return [e for e in ledger.entries(account=name) if e.kind == "commit"]


@pytest.fixture
def proxy(smol_server):
    with FaultProxy(smol_server.root_url) as p:
        yield p


@pytest.fixture
def proxied_engine(proxy, engine, prices):
    """The real engine's server, reached through the recording proxy (its speed measured by the session engine)."""
    eng = VLLMEngine("local/smollm2-135m", proxy.url, "smollm2-135m", prices=prices, device="cpu",
                     auto_tools=False, max_model_len=engine.max_model_len)
    eng.throughput = engine.throughput
    yield eng
    eng.close()


# ------------------------------------------------------------------------------------------------ budget forcing


def test_forced_samples_never_exceed_thinking_budget_plus_answer_cap(proxied_engine, proxy, ledger):
    think, cap, n = 8, 6, 3
    account = ledger.root("run", Budget(usd=1.0)).child("task")
    out = budget_forced(proxied_engine, MATH, account=account, thinking_budget=think, answer_max_tokens=cap, n=n,
                        temperature=0.8)
    assert len(out.samples) == n and out.thinking_budget == think
    commits = _commits(ledger)
    assert len(commits) == 1 + n  # one reasoning call for the n samples, one answer call each
    assert commits[0].amounts["output_tokens"] <= n * think
    assert all(c.amounts["output_tokens"] <= cap for c in commits[1:])
    assert account.spent().output_tokens <= n * (think + cap)
    # 8 tokens cannot reach the end of this solution: every sample ran out, was forced, and the cue appended
    for sample in out.samples:
        assert sample.forced and sample.answered and sample.thought_tokens == think
        assert sample.cue.endswith(ANSWER_CUE) and sample.text.startswith(sample.reasoning + sample.cue)
        assert sample.answer_tokens <= cap and 0 < sample.answer_probability <= 1
    reasoning_request, *answer_requests = proxy.requests
    assert reasoning_request["max_tokens"] == think and reasoning_request["stop"] == [ANSWER_CUE]
    assert sorted(r["prompt"] for r in answer_requests) == sorted(MATH + s.reasoning + s.cue for s in out.samples)
    assert all(r["prompt"].endswith("\n" + ANSWER_CUE) or r["prompt"].endswith(" " + ANSWER_CUE)
               for r in answer_requests)
    assert all(r["max_tokens"] == cap and r["stop"] == ["\n"] for r in answer_requests)


def test_a_sample_that_reaches_the_cue_is_not_forced(engine, ledger):
    account = ledger.root("run", Budget(usd=1.0)).child("task")
    out = budget_forced(engine, FEW_SHOT, account=account, thinking_budget=48, answer_max_tokens=6)
    sample = out.samples[0]
    # greedy SmolLM2 copies the pattern: "4 + 3 = 7." then stops at the cue, well inside 48 tokens
    assert not sample.forced and sample.thought_tokens < 48 and ANSWER_CUE not in sample.reasoning
    assert sample.cue == ANSWER_CUE  # the reasoning ended its line: the cue continues it directly
    assert sample.answer.strip().startswith("7")


def test_forcing_fits_a_tiny_token_budget_so_every_answer_still_fits(engine, ledger):
    account = ledger.root("tiny", Budget(output_tokens=30))
    out = budget_forced(engine, MATH, account=account, n=4, thinking_budget=64, answer_max_tokens=10,
                        temperature=0.8)
    # 30 tokens: 2 samples (each needs an answer of 10 and at least one more token), 15 - 10 = 5 thinking tokens each
    assert len(out.samples) == 2 and out.thinking_budget == 5 and all(s.answered for s in out.samples)
    assert account.spent().output_tokens <= 30 and account.held().output_tokens == 0
    assert "2 sample(s) of 5 thinking tokens" in out.notes[0]


def test_forcing_with_no_budget_left_refuses_before_sending(engine, ledger):
    account = ledger.root("broke", Budget(output_tokens=0))
    with pytest.raises(BudgetExceeded):
        budget_forced(engine, MATH, account=account, thinking_budget=16)
    assert account.spent().calls == 0


def test_the_local_engine_refuses_a_thinking_budget_and_names_budget_forcing(engine, ledger):
    account = ledger.root("run", Budget(usd=1.0)).child("task")
    with pytest.raises(LLMError, match="budget_forced"):
        engine.generate(MATH, account=account, max_tokens=64, thinking_budget=32)
    assert [e.kind for e in ledger.entries(account="task")] == ["open"]  # nothing reserved, nothing sent


# --------------------------------------------------------------------------------- a reasoning model's own field

MODEL = "openai/smollm2-135m"


def _remote(proxy: FaultProxy, prices, **kw) -> LiteLLMModel:
    return LiteLLMModel(MODEL, prices=prices, api_base=proxy.url, api_key="local", **kw)


def test_reasoning_effort_is_sent_and_the_reservation_counts_the_thinking(proxy, prices, ledger):
    account = ledger.root("run", Budget(usd=1.0)).child("task")
    proxy.modes.append("reasoning")  # the provider bills every completion token as reasoning
    gen = _remote(proxy, prices, reasoning="reasoning_effort").generate(
        MATH, account=account, max_tokens=40, thinking_budget=32)
    sent = proxy.requests[0]
    assert sent["reasoning_effort"] == "low" and sent["max_completion_tokens"] == 40
    reserve = next(e for e in ledger.entries(account="task") if e.kind == "reserve")
    assert reserve.amounts["output_tokens"] == 40  # thinking budget + answer room, all reserved
    assert gen.usage.reasoning_tokens == proxy.reported_usage[0]["completion_tokens"] > 0
    assert account.spent().output_tokens == gen.usage.output_tokens <= 40
    assert any("thinking budget 32 sent as reasoning_effort" in n for n in gen.notes)


def test_an_anthropic_style_thinking_budget_is_sent_as_declared(proxy, prices, ledger):
    account = ledger.root("run", Budget(usd=1.0)).child("task")
    _remote(proxy, prices, reasoning="thinking").generate(MATH, account=account, max_tokens=24, thinking_budget=16)
    assert proxy.requests[0]["thinking"] == {"type": "enabled", "budget_tokens": 16}
    assert proxy.requests[0]["max_completion_tokens"] == 24


def test_a_budget_that_cannot_hold_the_thinking_refuses_before_sending(proxy, prices, ledger):
    model = _remote(proxy, prices, reasoning="reasoning_effort")
    bound = model.prompt_bound(MATH)
    # affords 20 output tokens at most: max_tokens would be shrunk into the 32 thinking tokens, so it is refused
    cap = prices.worst_cost(MODEL, input_tokens=bound + 16, output_tokens=20)
    account = ledger.root("run", Budget(usd=cap)).child("task")
    with pytest.raises(BudgetExceeded):
        model.generate(MATH, account=account, max_tokens=64, thinking_budget=32)
    assert proxy.received == 0 and account.spent().calls == 0


def test_inconsistent_or_unknown_thinking_requests_are_refused_before_sending(proxy, prices, ledger):
    account = ledger.root("run", Budget(usd=1.0)).child("task")
    with pytest.raises(ValueError, match="must cover thinking_budget"):
        _remote(proxy, prices, reasoning="thinking").generate(MATH, account=account, max_tokens=32,
                                                              thinking_budget=32)
    with pytest.raises(LLMError, match="not know it as a reasoning model"):  # auto: LiteLLM's map says it does not
        _remote(proxy, prices).generate(MATH, account=account, max_tokens=64, thinking_budget=32)
    with pytest.raises(ValueError, match="not both"):
        _remote(proxy, prices, reasoning="thinking", extra={"reasoning_effort": "high"}).generate(
            MATH, account=account, max_tokens=64, thinking_budget=32)
    assert proxy.received == 0 and [e.kind for e in ledger.entries(account="task")] == ["open"]


def test_auto_routes_follow_litellms_model_map():
    assert thinking_route(litellm, "anthropic/claude-sonnet-4-20250514", None, "auto") == ThinkingRoute("thinking")
    assert thinking_route(litellm, "gemini/gemini-2.5-flash", None, "auto") == ThinkingRoute("thinking")
    assert thinking_route(litellm, "o3-mini", None, "auto") == ThinkingRoute("reasoning_effort")
    assert thinking_route(litellm, "gpt-5", None, "auto") == ThinkingRoute("reasoning_effort", minimal=True)
    assert thinking_route(litellm, MODEL, None, "auto") is None  # not a reasoning model
    assert thinking_route(litellm, "o3-mini", None, "none") is None
    assert ThinkingRoute("thinking", passthrough=True).fields(64) == {
        "extra_body": {"thinking": {"type": "enabled", "budget_tokens": 64}}}


def test_effort_levels_follow_litellms_thresholds():
    assert [effort_for(b) for b in (100, 1023, 1024, 2047, 2048, 4095, 4096, 50_000)] == [
        "low", "low", "low", "low", "medium", "medium", "high", "high"]
    assert effort_for(100, minimal=True) == "minimal" and effort_for(1024, minimal=True) == "low"
