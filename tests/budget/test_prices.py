import pytest

from budgetflow import PriceBook, UnpricedModel


def test_litellm_bundled_price_map_offline():
    book = PriceBook()
    price = book.price("gpt-4o-mini")
    assert price.source == "litellm"
    assert price.input_per_token > 0 and price.output_per_token > price.input_per_token
    cost = book.cost("gpt-4o-mini", input_tokens=1000, output_tokens=500)
    assert cost == pytest.approx(1000 * price.input_per_token + 500 * price.output_per_token)


def test_provider_prefixed_name_resolves():
    assert PriceBook().price("openai/gpt-4o-mini").input_per_token == PriceBook().price("gpt-4o-mini").input_per_token


def test_cached_input_and_reasoning_tokens_priced_at_their_rates():
    book = PriceBook({"m": {"input_per_million": 1.0, "cached_input_per_million": 0.1,
                            "output_per_million": 4.0, "reasoning_per_million": 8.0}})
    cost = book.cost("m", input_tokens=1000, cached_input_tokens=600, output_tokens=100, reasoning_tokens=40)
    assert cost == pytest.approx((400 * 1.0 + 600 * 0.1 + 60 * 4.0 + 40 * 8.0) / 1e6)
    with pytest.raises(ValueError):
        book.cost("m", input_tokens=10, cached_input_tokens=20)


def test_unknown_model_is_refused_with_advice():
    with pytest.raises(UnpricedModel) as info:
        PriceBook().price("local/qwen2.5-coder-1.5b")
    message = str(info.value)
    assert "local/qwen2.5-coder-1.5b" in message and "allow_free" in message and "cpu_hour" in message


def test_allow_free_is_explicit():
    assert PriceBook(allow_free=True).cost("local/anything", input_tokens=10**6) == 0.0


def test_override_wins_over_litellm_and_per_second_prices():
    book = PriceBook()
    book.set("gpt-4o-mini", input_per_token=1.0, output_per_token=2.0)
    assert book.cost("gpt-4o-mini", input_tokens=3, output_tokens=1) == pytest.approx(5.0)
    book.set("local/smollm2-135m", cpu_hour=0.36, gpu_hour=3.6)
    assert book.cost("local/smollm2-135m", cpu_seconds=10, gpu_seconds=1) == pytest.approx(10 * 1e-4 + 1e-3)


def test_toml_overrides(tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text('allow_free = false\n[models."local/qwen"]\ncpu_hour = 0.05\n'
                    '[models."openai/ft"]\ninput_per_million = 0.5\noutput_per_million = 1.5\n')
    book = PriceBook.from_toml(path)
    assert book.price("local/qwen").cpu_second == pytest.approx(0.05 / 3600)
    assert book.cost("openai/ft", input_tokens=2_000_000) == pytest.approx(1.0)


@pytest.mark.parametrize("text, match", [
    ('[models."m"]\ninput_per_million = -1\n', "≥ 0"),
    ('[models."m"]\nbogus = 1\n', "bogus"),
    ("budget = 3\n", "unknown top-level"),
    ("[models\n", "not valid TOML"),
])
def test_bad_price_files_are_clear_errors(tmp_path, text, match):
    path = tmp_path / "prices.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        PriceBook.from_toml(path)


# ---------------------------------------------------------------------------------- issue 11, classes 2 and 3

import litellm  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from budgetflow.budget import ModelPrice  # noqa: E402


def _chat_entries():
    return {k: v for k, v in litellm.model_cost.items()
            if isinstance(v, dict) and v.get("mode") in ("chat", "completion", "responses")}


def test_issue11_class3_zero_priced_map_entries_are_unpriced():
    """issue 11 class 3: LiteLLM map entries priced at $0 (91 chat models) were taken as real prices."""
    zero = [k for k, v in _chat_entries().items()
            if v.get("input_cost_per_token") == 0 and v.get("output_cost_per_token") == 0]
    assert len(zero) >= 80
    book = PriceBook()
    for name in zero:
        with pytest.raises(UnpricedModel, match="\\$0"):
            book.price(name)
    # a missing or zero rate on either side is unknown too (perplexity's online models: input $0 + a request fee)
    with pytest.raises(UnpricedModel):
        book.price("perplexity/pplx-7b-online")
    assert PriceBook(allow_free=True).price(zero[0]).source == "free (allowed)"


def test_issue11_class3_an_override_with_no_positive_rate_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="allow_free"):
        PriceBook().set("m", input_per_million=0, output_per_million=0)
    with pytest.raises(ValueError, match="allow_free"):
        PriceBook({"m": ModelPrice()})
    path = tmp_path / "prices.toml"
    path.write_text('[models."local/x"]\ncpu_hour = 0\n')
    with pytest.raises(ValueError, match="allow_free"):
        PriceBook.from_toml(path)
    # local engines priced by engine time alone stay valid
    assert PriceBook({"local/x": ModelPrice(cpu_second=0.001)}).cost("local/x", cpu_seconds=2) == pytest.approx(0.002)
    assert PriceBook({"local/y": {"gpu_hour": 3.6}}).price("local/y").gpu_second == pytest.approx(0.001)


def test_issue11_class2_tiers_from_the_litellm_map_are_billed():
    """issue 11 class 2: tiered prices (more past 200k prompt tokens) were ignored: the tier is chosen by the
    prompt's size and bills every token of the request."""
    entry = litellm.model_cost["gemini/gemini-2.5-pro"]
    book = PriceBook()
    below = book.cost("gemini/gemini-2.5-pro", input_tokens=200_000, output_tokens=1000)
    assert below == pytest.approx(200_000 * entry["input_cost_per_token"] + 1000 * entry["output_cost_per_token"])
    above = book.cost("gemini/gemini-2.5-pro", input_tokens=200_001, output_tokens=1000, cached_input_tokens=1)
    assert above == pytest.approx(200_000 * entry["input_cost_per_token_above_200k_tokens"]
                                  + entry["cache_read_input_token_cost_above_200k_tokens"]
                                  + 1000 * entry["output_cost_per_token_above_200k_tokens"])
    # the worst case reaches the tier only when the prompt bound can
    assert book.worst_cost("gemini/gemini-2.5-pro", input_tokens=1000, output_tokens=10) == pytest.approx(
        1000 * entry["input_cost_per_token"] + 10 * entry["output_cost_per_token"])
    assert book.worst_cost("gemini/gemini-2.5-pro", input_tokens=300_000, output_tokens=10) >= \
        book.cost("gemini/gemini-2.5-pro", input_tokens=300_000, output_tokens=10)


def test_xai_tiers_start_at_the_threshold_and_range_tables_are_read():
    grok = litellm.model_cost["xai/grok-4.3"]
    assert PriceBook().cost("xai/grok-4.3", input_tokens=200_000) == pytest.approx(
        200_000 * grok["input_cost_per_token_above_200k_tokens"])  # xAI bills the tier from 200k itself
    flash = litellm.model_cost["dashscope/qwen-flash"]["tiered_pricing"]  # (start, end] ranges, no flat rate
    book = PriceBook()
    assert book.cost("dashscope/qwen-flash", input_tokens=1000, output_tokens=10) == pytest.approx(
        1000 * flash[0]["input_cost_per_token"] + 10 * flash[0]["output_cost_per_token"])
    assert book.cost("dashscope/qwen-flash", input_tokens=300_000, output_tokens=10) == pytest.approx(
        300_000 * flash[1]["input_cost_per_token"] + 10 * flash[1]["output_cost_per_token"])


def test_issue11_class2_cache_writes_and_reasoning_from_the_litellm_map():
    """issue 11 class 2: cache-write prices were ignored, and the worst case priced output at the output rate while
    reasoning can cost more (15 map entries)."""
    claude = litellm.model_cost["claude-sonnet-4-5"]
    cost = PriceBook().cost("claude-sonnet-4-5", input_tokens=1000, cached_input_tokens=100, cache_write_tokens=300,
                            cache_write_1h_tokens=100, output_tokens=10)
    assert cost == pytest.approx(600 * claude["input_cost_per_token"] + 100 * claude["cache_read_input_token_cost"]
                                 + 200 * claude["cache_creation_input_token_cost"]
                                 + 100 * claude["cache_creation_input_token_cost_above_1hr"]
                                 + 10 * claude["output_cost_per_token"])
    assert PriceBook().worst_cost("claude-sonnet-4-5", input_tokens=1000) == pytest.approx(
        1000 * claude["cache_creation_input_token_cost_above_1hr"])  # the highest input-side rate
    costly = [k for k, v in _chat_entries().items()
              if (v.get("output_cost_per_reasoning_token") or 0) > (v.get("output_cost_per_token") or 0) > 0]
    assert len(costly) >= 15
    for name in costly:
        rate = litellm.model_cost[name]["output_cost_per_reasoning_token"]
        assert PriceBook().worst_cost(name, output_tokens=100) == pytest.approx(100 * rate)
        assert PriceBook().cost(name, output_tokens=100, reasoning_tokens=100) == pytest.approx(100 * rate)


def test_tiers_and_new_rates_in_toml(tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text('[models."m"]\ninput_per_million = 1\noutput_per_million = 2\ncache_write_per_million = 1.25\n'
                    '[[models."m".tiers]]\nabove_input_tokens = 1000\ninput_per_million = 2\n')
    book = PriceBook.from_toml(path)
    assert book.cost("m", input_tokens=1000, output_tokens=1) == pytest.approx((1000 * 1 + 2) / 1e6)
    assert book.cost("m", input_tokens=1001, output_tokens=1) == pytest.approx((1001 * 2 + 2) / 1e6)
    # the cache-write rate has no tier of its own: the tier below's stands
    assert book.cost("m", input_tokens=2000, cache_write_tokens=2000) == pytest.approx(2000 * 1.25 / 1e6)


# property: cost(actual) <= worst_cost(bounds) for every usage within the bounds, whatever the price

_rate = st.floats(min_value=0, max_value=1e-3, allow_nan=False) | st.just(0.0)
_maybe = st.none() | _rate
_RATES = ("cached_input", "cache_write", "cache_write_1h", "cache_write_12h", "reasoning", "input_audio",
          "input_image", "output_audio", "output_image")
_tier = st.builds(lambda n, r: {"above_input_tokens": n, **{f"{k}_per_token": v for k, v in r.items()}},
                  st.integers(0, 5000), st.fixed_dictionaries({}, optional={k: _maybe for k in ("input", "output",
                                                                                                *_RATES)}))
_price = st.builds(
    lambda i, o, r, tiers, fee: ModelPrice(input_per_token=i, output_per_token=o, per_request=fee,
                                           tiers=list({t["above_input_tokens"]: t for t in tiers}.values()),
                                           **{f"{k}_per_token": v for k, v in r.items()}),
    st.floats(1e-9, 1e-3), st.floats(1e-9, 1e-3), st.fixed_dictionaries({}, optional={k: _maybe for k in _RATES}),
    st.lists(_tier, max_size=3), _rate)


def _split(draw, total: int, parts: int) -> list[int]:
    """`parts` + 1 disjoint shares of `total`: often all of it in one share (where a worst case hides)."""
    if draw(st.booleans()):
        shares = [0] * (parts + 1)
        shares[draw(st.integers(0, parts))] = total
        return shares
    cuts = sorted(draw(st.lists(st.integers(0, total), min_size=parts, max_size=parts)))
    return [b - a for a, b in zip([0] + cuts, cuts + [total])]


@st.composite
def _usage_within(draw, max_in: int, max_out: int) -> dict:
    inp = draw(st.just(max_in) | st.integers(0, max_in))  # at the bound often: that is where it is tight
    out = draw(st.just(max_out) | st.integers(0, max_out))
    _, cached, write, audio, image = _split(draw, inp, 4)
    _, w1, w12 = _split(draw, write, 2)
    _, reasoning, audio_out, image_out = _split(draw, out, 3)
    return dict(input_tokens=inp, output_tokens=out, cached_input_tokens=cached, cache_write_tokens=write,
                cache_write_1h_tokens=w1, cache_write_12h_tokens=w12, input_audio_tokens=audio,
                input_image_tokens=image, reasoning_tokens=reasoning, output_audio_tokens=audio_out,
                output_image_tokens=image_out)


@settings(max_examples=300, deadline=None)
@given(price=_price, max_in=st.integers(0, 10_000), max_out=st.integers(0, 4_000), data=st.data())
def test_issue11_class2_cost_never_exceeds_worst_cost(price, max_in, max_out, data):
    """issue 11 class 2 (property): whatever the price (tiers, cache writes, reasoning, modalities) and however the
    usage splits, cost(actual) <= worst_cost(bounds) for every usage within the bounds."""
    book = PriceBook({"m": price})
    worst = book.worst_cost("m", input_tokens=max_in, output_tokens=max_out)
    usage = data.draw(_usage_within(max_in, max_out))
    assert book.cost("m", **usage) <= worst * (1 + 1e-12) + 1e-18
    # cost is linear in the usage within a tier, so its maximum is at a vertex: every token of each side in one
    # kind, at the top of a tier's prompt range. Checking all of them covers every usage within the bounds.
    tops = {max_in} | {t.above_input_tokens for t in price.tiers if t.above_input_tokens < max_in}
    for inp in tops:
        for kind in (None, "cached_input_tokens", "cache_write_tokens", "cache_write_1h_tokens",
                     "cache_write_12h_tokens", "input_audio_tokens", "input_image_tokens"):
            for out_kind in (None, "reasoning_tokens", "output_audio_tokens", "output_image_tokens"):
                vertex = {"input_tokens": inp, "output_tokens": max_out}
                if kind:
                    vertex[kind] = inp
                    if kind.startswith("cache_write_"):
                        vertex["cache_write_tokens"] = inp
                if out_kind:
                    vertex[out_kind] = max_out
                assert book.cost("m", **vertex) <= worst * (1 + 1e-12) + 1e-18, vertex
