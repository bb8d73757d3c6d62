"""`--strategy think` (budget forcing) and `--strategy plan-and-budget` (a task's token budget split across a plan's
sub-questions), with the real SmolLM2 engine and a real SQLite ledger."""

from __future__ import annotations

import pytest

from budgetflow import Budget
from budgetflow.search import (
    PlanBudgetSettings,
    Resources,
    SettingsError,
    allocate_budget,
    make_solver,
    parse_plan,
    plan_and_budget,
    think,
)
from budgetflow.tasks import MathTask

TASK = MathTask(id="toy", question="Tom has 3 apples and buys 4 more. How many apples does he have?", answer="7")


def test_schedules_split_the_budget_exactly():
    assert allocate_budget(100, 4, "uniform") == [25, 25, 25, 25]
    assert allocate_budget(100, 4, "linear") == [40, 30, 20, 10]  # weights 4:3:2:1
    assert allocate_budget(10, 3, "linear") == [5, 3, 2]  # 5, 3.33, 1.67: the spare token to the largest fraction
    assert allocate_budget(60, 3, "polynomial") == [39, 17, 4]  # weights 9:4:1 → 38.57, 17.14, 4.29
    assert allocate_budget(60, 3, "polynomial", power=3.0) == [45, 13, 2]  # weights 27:8:1 → 45, 13.33, 1.67
    for total, steps in ((0, 3), (7, 5), (1000, 6)):
        for schedule in ("uniform", "linear", "polynomial"):
            shares = allocate_budget(total, steps, schedule)
            assert sum(shares) == total and shares == sorted(shares, reverse=True)
    assert allocate_budget(50, 0) == []


def test_a_plan_is_parsed_into_at_most_the_asked_sub_questions():
    text = " How many apples at first?\n2) How many bought?\n- Total?\n4. Extra?\n\nThe answer is 7."
    assert parse_plan(text, 3) == ["How many apples at first?", "How many bought?", "Total?"]
    assert parse_plan("", 3) == []


def test_think_caps_every_sample_and_votes(engine, ledger):
    acct = ledger.root("think", Budget(output_tokens=1000))
    res = think(engine, TASK, account=acct, thinking_budget=24, answer_max_tokens=8, samples=3, temperature=0.8)
    d = res.details
    assert res.reason == "finished" and res.samples == 3 and all(d["answered"])
    assert all(t <= 24 for t in d["thought_tokens"]) and all(t <= 8 for t in d["answer_tokens"])
    assert res.spend["total"].output_tokens == acct.spent().output_tokens <= 3 * (24 + 8)
    assert res.answer is not None and res.answer in d["answers"]
    assert res.confidence == pytest.approx(d["answers"].count(res.answer) / 3)  # the vote share


def test_think_under_a_tiny_budget_stops_cleanly(engine, ledger):
    acct = ledger.root("tiny", Budget(output_tokens=5))
    res = think(engine, TASK, account=acct, thinking_budget=64, answer_max_tokens=12, samples=2)
    assert acct.spent().output_tokens <= 5 and acct.held().output_tokens == 0
    assert res.reason == "budget" and res.samples == 1  # one sample, no thinking, its answer cut to what was left
    assert res.details["thinking_budget"] == 0 and res.details["forced"] == [True]


def test_plan_and_budget_stays_within_its_budget_and_follows_the_schedule(engine, ledger):
    acct = ledger.root("plan", Budget(usd=1.0))
    settings = PlanBudgetSettings(total_tokens=200, max_subquestions=3, plan_max_tokens=48, schedule="linear",
                                  answer_max_tokens=8)
    res = plan_and_budget(engine, TASK, account=acct, settings=settings)
    d = res.details
    assert d["budget"] == 200 and d["output_tokens"] == acct.spent().output_tokens <= 200
    steps = len(d["subquestions"])
    assert 1 <= steps <= 3 and len(d["allocations"]) == steps == len(d["steps"])
    # the pool after the plan and every answer cap, split 3:2:1 (linear) — the first share is exactly the schedule's
    assert 0 < d["plan_tokens"] <= 48
    assert d["planned"] == allocate_budget(200 - d["plan_tokens"] - (steps + 1) * 8, steps, "linear")
    assert d["allocations"][0] == d["planned"][0]
    # later shares roll over what earlier steps left unused: never less than planned (but for rounding)
    assert all(a >= p - 1 for a, p in zip(d["allocations"], d["planned"]))
    for share, step in zip(d["allocations"], d["steps"]):
        assert step["thinking_budget"] == share and step["thought_tokens"][0] <= share
    assert res.reason == "finished" and res.answer is not None and res.confidence is not None


def test_plan_and_budget_under_a_tiny_budget_stops_cleanly(engine, ledger):
    acct = ledger.root("tiny-plan", Budget(output_tokens=20))
    res = plan_and_budget(engine, TASK, account=acct, settings=PlanBudgetSettings(answer_max_tokens=8))
    assert acct.spent().output_tokens <= 20 and acct.held().output_tokens == 0
    assert res.details["budget"] == 20 and res.reason in ("finished", "budget")
    assert len(res.details["steps"]) <= 1  # 20 tokens: a 4-token plan, then room for one step's answer and the final


def test_solvers_are_registered_with_validated_settings(engine, ledger):
    solver = make_solver("think", {"thinking_budget": "16", "answer_max_tokens": 6})
    res = solver.solve(TASK, Resources(llm=engine, account=ledger.root("cli", Budget(output_tokens=200))))
    assert res.details["thinking_budget"] == 16 and res.account == "cli"
    with pytest.raises(SettingsError, match="schedule"):
        make_solver("plan-and-budget", {"schedule": "cosine"})
