"""The gateway, proven with the clients people use: the official `openai` client and LangChain's ChatOpenAI, against
the real vLLM server behind a real gateway on loopback. Each test says which promise of `budgetflow serve` it holds:
usage in every response equals the ledger, a refused call reaches no model, a stream cut by its client is charged what
it generated, the cap holds under 64 concurrent streams."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import openai
import pytest

from budgetflow import Budget
from budgetflow.budget import revoke_key

from .conftest import MODEL

HI = [{"role": "user", "content": "Say hello."}]


def client(gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0, timeout=300)


def nothing_open(ledger) -> bool:
    return all(not any(b.reserved_units.values()) for b in ledger.accounts())


def test_chat_usage_equals_the_ledger_and_the_servers_counters(gateway, counters):
    key = gateway.key("team-a", 1.0)
    oa = client(gateway, key)
    before = counters.read()
    one = oa.chat.completions.create(model=MODEL, messages=HI, max_tokens=8)
    two = oa.chat.completions.create(model=MODEL, messages=HI, max_tokens=6, n=2, temperature=0.8)
    delta = counters.delta(before)
    assert len(two.choices) == 2 and one.choices[0].message.content
    bal = gateway.ledger.account("team-a").balance()
    usages = [one.usage.model_extra["budgetflow"], two.usage.model_extra["budgetflow"]]
    # the money: what each response says it cost is what the ledger committed, to the nano-dollar
    assert abs(bal.committed.usd - sum(u["usd"] for u in usages)) < 2e-9
    assert usages[-1]["spent_usd"] == pytest.approx(bal.committed.usd, abs=1e-9)
    assert usages[-1]["remaining_usd"] == pytest.approx(1.0 - bal.committed.usd, abs=1e-9)
    # the tokens: the ledger, the responses and the server's own counters agree
    assert bal.committed.output_tokens == one.usage.completion_tokens + two.usage.completion_tokens \
        == delta["generation"]
    assert bal.committed.input_tokens == one.usage.prompt_tokens + two.usage.prompt_tokens
    assert gateway.ledger.verify().ok and nothing_open(gateway.ledger)


def test_a_stream_ends_with_the_metered_usage(gateway, counters):
    key = gateway.key("streamer", 1.0)
    before = counters.read()
    chunks = list(client(gateway, key).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Count to ten."}], max_tokens=12, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = chunks[-1]
    assert text and last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens == counters.delta(before)["generation"]
    bal = gateway.ledger.account("streamer").balance()
    assert last.usage.model_extra["budgetflow"]["spent_usd"] == pytest.approx(bal.committed.usd, abs=1e-9)
    assert bal.committed.output_tokens == last.usage.completion_tokens and nothing_open(gateway.ledger)


def test_tool_call_and_structured_output_through_the_gateway(gateway):
    key = gateway.key("tools", 1.0)
    oa = client(gateway, key)
    tool = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                             "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                            "required": ["city"]}}}
    r = oa.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Weather in Paris?"}],
                                   tools=[tool], tool_choice={"type": "function", "function": {"name": "get_weather"}},
                                   max_tokens=150, temperature=0)
    call = r.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and isinstance(json.loads(call.function.arguments)["city"], str)
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    r = oa.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "2+2? Answer in JSON."}],
                                   response_format={"type": "json_schema",
                                                    "json_schema": {"name": "a", "schema": schema}},
                                   max_tokens=150, temperature=0)
    assert isinstance(json.loads(r.choices[0].message.content)["answer"], int)


def test_an_exhausted_key_gets_402_and_nothing_reaches_the_model(gateway, counters):
    """The refusal class: nothing fits → HTTP 402 budget_exceeded with dollars left, no request upstream, nothing
    held. The openai client does not retry 402 (it retries 429 and 5xx), so the agent stops at once."""
    key = gateway.key("broke", 1e-7)
    before = counters.read()
    with pytest.raises(openai.APIStatusError) as refused:
        openai.OpenAI(base_url=gateway.base_url, api_key=key).chat.completions.create(  # default retries
            model=MODEL, messages=HI, max_tokens=8)
    assert refused.value.status_code == 402
    error = refused.value.body
    assert error["type"] == "budget_exceeded" and "left of $" in error["message"] and "broke" in error["message"]
    with pytest.raises(openai.APIStatusError) as streamed:
        list(client(gateway, key).chat.completions.create(model=MODEL, messages=HI, max_tokens=8, stream=True))
    assert streamed.value.status_code == 402
    assert counters.delta(before)["requests"] == 0
    assert gateway.ledger.account("broke").balance().committed.usd == 0 and nothing_open(gateway.ledger)


def test_max_tokens_is_shrunk_to_what_the_key_affords_and_said(gateway):
    key = gateway.key("small", 0.04)  # 40 engine-seconds at the tests' $3.60/h: far less than 1900 tokens' worst case
    r = gateway.post("/chat/completions", key, {"model": MODEL, "messages": HI, "max_tokens": 1900, "stop": ["\n"]})
    assert r.status_code == 200, r.text
    usage = r.json()["usage"]["budgetflow"]
    assert usage["shrunk"] and usage["max_tokens"] < 1900 and "budget" in r.headers["x-budgetflow-shrunk"]
    assert int(r.headers["x-budgetflow-max-tokens"]) == usage["max_tokens"]
    assert gateway.ledger.account("small").balance().committed.usd <= 0.04


def test_bad_requests_are_refused_before_anything_is_spent(gateway, counters):
    key = gateway.key("careful", 1.0)
    before = counters.read()
    cases = [
        (gateway.post("/chat/completions", "bfk_nope_nope", {"model": MODEL, "messages": HI}), 401, "invalid_api_key"),
        (httpx.post(f"{gateway.base_url}/chat/completions", json={"model": MODEL, "messages": HI}), 401,
         "invalid_api_key"),
        (gateway.post("/chat/completions", key, {"model": "gpt-9", "messages": HI}), 404, "model_not_found"),
        (gateway.post("/chat/completions", key, {"model": MODEL}), 400, "invalid_request_error"),
        (gateway.post("/chat/completions", key, {"model": MODEL, "messages": HI, "temperature": 9}), 400,
         "invalid_request_error"),
        (gateway.post("/chat/completions", key, {"model": MODEL, "messages": HI, "n": 99}), 400,
         "invalid_request_error"),
        (gateway.post("/chat/completions", key, {"model": MODEL, "messages": [{"role": "user", "content": "x" * (5 << 20)}]}),
         413, "request_too_large"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
    revoke_key(gateway.ledger, key)
    revoked = gateway.post("/chat/completions", key, {"model": MODEL, "messages": HI})
    assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]["message"]
    assert counters.delta(before)["requests"] == 0
    assert gateway.ledger.account("careful").balance().committed.usd == 0


def test_a_client_gone_mid_stream_cuts_the_call_and_pays_what_it_generated(gateway, counters):
    """The disconnect class: the upstream call is cut (the server stops generating), its reservation closed, and it is
    charged what it generated — not the reservation, not nothing."""
    key = gateway.key("quitter", 20.0)  # min_tokens 1500: a worst case of minutes of engine time
    before = counters.read()
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Write a long story about a dragon."}],
            "max_tokens": 1500, "stream": True, "temperature": 0, "min_tokens": 1500}
    got = 0
    with httpx.stream("POST", f"{gateway.base_url}/chat/completions", json=body, timeout=120,
                      headers={"authorization": f"Bearer {key}"}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: {"):
                got += 1
            if got >= 4:
                break  # leave mid-stream: the connection is closed here
    account = gateway.ledger.account("quitter")
    for _ in range(300):
        if not any(account.balance().reserved_units.values()):
            break
        time.sleep(0.1)
    bal = account.balance()
    assert not any(bal.reserved_units.values()), "the cut call's reservation is still open"
    generated = counters.delta(before)["generation"]
    assert got <= generated < 1500  # the server was told to stop
    held = sum(e.amounts.get("usd", 0) for e in gateway.ledger.entries("quitter") if e.kind in ("reserve", "extend"))
    # charged the engine time it used (a local engine's price), far below the worst case it held
    assert 0 < bal.committed.usd < held / 4
    assert gateway.ledger.verify().ok


def test_langchain_chat_openai_through_the_gateway(gateway):
    from langchain_openai import ChatOpenAI

    key = gateway.key("lc", 1.0)
    chat = ChatOpenAI(model=MODEL, base_url=gateway.base_url, api_key=key, max_tokens=8, max_retries=0)
    reply = chat.invoke("Say hello.")
    bal = gateway.ledger.account("lc").balance()
    assert reply.usage_metadata["output_tokens"] == bal.committed.output_tokens > 0
    assert reply.response_metadata["token_usage"]["budgetflow"]["spent_usd"] == pytest.approx(bal.committed.usd,
                                                                                             abs=1e-9)


async def _storm(gateway, keys: list[str], n: int, max_tokens: int) -> tuple[int, int, list[str]]:
    """n concurrent streaming clients over `keys`: (finished, refused, other errors)."""
    async def one(i: int):
        oa = openai.AsyncOpenAI(base_url=gateway.base_url, api_key=keys[i % len(keys)], max_retries=0, timeout=600)
        try:
            stream = await oa.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"Say {i}."}],
                                                      max_tokens=max_tokens, stream=True)
            async for _ in stream:
                pass
            return "ok"
        except openai.APIStatusError as err:
            return "refused" if err.status_code == 402 else f"{err.status_code}: {err.message}"
        finally:
            await oa.close()

    results = await asyncio.gather(*(one(i) for i in range(n)))
    return results.count("ok"), results.count("refused"), [r for r in results if r not in ("ok", "refused")]


@pytest.mark.parametrize("keys", [1, 8])
def test_64_concurrent_streams_never_exceed_the_cap(gateway, keys):
    """The load class: 64 streaming clients on one key, and on 8 keys whose accounts share a parent's cap. Some are
    refused (the cap binds), none is charged past it, nothing stays held, the journal verifies."""
    cap = 0.03
    if keys == 1:
        key_list = [gateway.key("swarm", cap)]
        capped = "swarm"
    else:
        parent = gateway.ledger.root("fleet", Budget(usd=cap))
        key_list = [gateway.key(f"fleet/agent-{i}", 1.0, parent=parent) for i in range(keys)]
        capped = "fleet"
    done, refused, errors = asyncio.run(_storm(gateway, key_list, 64, 8))
    bal = gateway.ledger.account(capped).balance()
    assert not errors, errors
    assert done > 0 and refused > 0 and done + refused == 64
    assert bal.committed.usd <= cap and nothing_open(gateway.ledger)
    assert gateway.ledger.verify().ok and not gateway.ledger.overruns()


def test_the_spend_page_needs_the_admin_token_and_shows_each_key(ledger, engine):
    from budgetflow.gateway import GatewaySettings

    from .conftest import Gateway

    with Gateway(ledger, engine, GatewaySettings(admin_token="s3cret")) as gw:
        key = gw.key("page-team", 0.5, label="nightly")
        client(gw, key).chat.completions.create(model=MODEL, messages=HI, max_tokens=4)
        root = gw.base_url.removesuffix("/v1")
        assert httpx.get(f"{root}/").status_code == 401
        assert httpx.get(f"{root}/?token=wrong").status_code == 401
        page = httpx.get(f"{root}/?token=s3cret")
        assert page.status_code == 200 and "page-team" in page.text and "nightly" in page.text
        assert "Spend per hour" in page.text and "$0.5" in page.text


def test_no_admin_token_no_page(gateway):
    assert httpx.get(gateway.base_url.removesuffix("/v1") + "/").status_code == 404
