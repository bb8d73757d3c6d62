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
