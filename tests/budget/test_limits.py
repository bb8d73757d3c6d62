import math

import pytest

from budgetflow import Budget
from budgetflow.budget._limits import amounts_to_units, format_amount, to_units


@pytest.mark.parametrize("field", ["usd", "gpu_seconds", "cpu_seconds", "wall_seconds"])
@pytest.mark.parametrize("bad, message", [(-0.01, "negative"), (math.nan, "NaN"), (math.inf, "infinite")])
def test_bad_float_caps_are_clear_errors(field, bad, message):
    with pytest.raises(ValueError, match=message):
        Budget(**{field: bad})


def test_bad_integer_caps():
    with pytest.raises(ValueError, match="negative"):
        Budget(calls=-1)
    with pytest.raises(ValueError, match="whole number"):
        Budget(output_tokens=10.5)
    with pytest.raises(ValueError):
        Budget(dollars=5)  # unknown field is refused, not ignored
    with pytest.raises(TypeError):
        Budget(usd="five")


def test_none_means_uncapped_and_zero_is_a_cap():
    b = Budget(usd=0, calls=None)
    assert b.cap_units()["usd"] == 0
    assert b.cap_units()["calls"] is None


def test_parse_cli_form():
    assert Budget.parse("usd=0.5, calls=100") == Budget(usd=0.5, calls=100)
    with pytest.raises(ValueError, match="name=value"):
        Budget.parse("usd")
    with pytest.raises(ValueError, match="not a number"):
        Budget.parse("usd=lots")


def test_fixed_point_rounding_never_undercharges_and_caps_round_down():
    assert to_units("usd", 0.1, round_up=True) == 100_000_000  # exact decimal, no float fuzz
    assert to_units("usd", 1e-10, round_up=True) == 1  # a sub-nano charge still costs something
    assert to_units("usd", 1e-10, round_up=False) == 0
    assert amounts_to_units({"usd": 0.0, "calls": 1}) == {"calls": 1}
    with pytest.raises(TypeError, match="unknown budget dimension"):
        amounts_to_units({"dollars": 1})


def test_format_amount():
    assert format_amount("usd", 3_100_000) == "$0.0031"
    assert format_amount("output_tokens", 1200) == "1,200 output tokens"
    assert format_amount("cpu_seconds", 12_500_000) == "12.5 cpu-seconds"
