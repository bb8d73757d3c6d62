"""Learning a cascade from calibration outcomes: a pure function, checked on hand-made outcomes whose best order is
worked out by hand (in the comments)."""

from __future__ import annotations

import pytest

from budgetflow.search import evaluate_order, learn_cascade, observation_from

# four calibration tasks, three stages: stage 1 costs 1 and solves task 0; stage 2 costs 4 and solves tasks 0-1;
# stage 3 costs 10 and solves tasks 0-2; nothing solves task 3
SOLVES = {1: {0}, 2: {0, 1}, 3: {0, 1, 2}}
COST = {1: 1.0, 2: 4.0, 3: 10.0}
OBS = [{s: (t in SOLVES[s], COST[s]) for s in (1, 2, 3)} for t in range(4)]


def test_an_order_is_evaluated_as_it_would_have_run():
    # [1, 3]: task 0 pays 1 (solved by stage 1); tasks 1-3 pay 1 + 10; solved: tasks 0, 1, 2
    assert evaluate_order(OBS, [1, 3]) == (0.75, (1 + 11 * 3) / 4)
    # [3, 2]: stage 2 runs only on task 3, which nothing solves
    assert evaluate_order(OBS, [3, 2]) == (0.75, (10 * 3 + 14) / 4)
    assert evaluate_order(OBS, [1]) == (0.25, 1.0)


def test_without_a_worth_the_cheapest_order_that_solves_most():
    learned = learn_cascade(OBS, [1, 2, 3], labels={1: "T0x1", 2: "T0.8x4", 3: "big:T0x1"})
    # solving 3 of 4 needs stage 3; cheapest such order: [1, 3] at 8.5 ([3] 10, [2, 3] 9, [1, 2, 3] 9)
    assert learned.order == [1, 3]
    assert (learned.expected_solved, learned.expected_usd) == (0.75, 8.5)
    assert [(c.stage, c.config, c.passed, c.pass_rate, c.mean_usd) for c in learned.table] == [
        (1, "T0x1", 1, 0.25, 1.0), (2, "T0.8x4", 2, 0.5, 4.0), (3, "big:T0x1", 3, 0.75, 10.0)]


def test_a_budget_per_task_bounds_the_expected_cost():
    # at most 8 per task: stage 3 never fits after anything; [2] and [1, 2] both solve half for 4 -> the shorter
    learned = learn_cascade(OBS, [1, 2, 3], budget_usd=8.0)
    assert learned.order == [2] and learned.expected_usd == 4.0 and "<= 8" in learned.rule
    # below every stage's cost: the cheapest stage alone, said so
    poor = learn_cascade(OBS, [1, 2, 3], budget_usd=0.5)
    assert poor.order == [1] and "cheapest stage alone" in poor.rule


@pytest.mark.parametrize(("worth", "order"), [
    (5.0, [1]),  # [1]: 0.25*5 - 1 = 0.25; every other order is below 0
    (20.0, [1, 3]),  # [1, 3]: 15 - 8.5 = 6.5 beats [2] / [1, 2] (10 - 4 = 6) and [3] (15 - 10 = 5)
    (1000.0, [1, 3]),  # solving 3 of 4 at the least cost
])
def test_with_a_worth_a_stage_stays_only_if_its_solves_pay_for_it(worth, order):
    assert learn_cascade(OBS, [1, 2, 3], worth_usd=worth).order == order


def test_nothing_solved_picks_the_cheapest_stage_and_ties_keep_the_given_order():
    none = [{1: (False, 2.0), 2: (False, 1.0)}] * 3
    assert learn_cascade(none, [1, 2]).order == [2]
    same = [{1: (True, 1.0), 2: (True, 1.0)}] * 2
    assert learn_cascade(same, [1, 2]).order == [1]


def test_observations_come_from_calibration_details_and_cut_stages_are_left_out():
    details = {"stages": [{"stage": 1, "passed": False, "usd": 0.5, "stopped": None},
                          {"stage": 2, "passed": True, "usd": 2.0, "stopped": None}]}
    assert observation_from(details, [1, 2]) == {1: (False, 0.5), 2: (True, 2.0)}
    cut = {"stages": [details["stages"][0], {**details["stages"][1], "stopped": "budget: ..."}]}
    assert observation_from(cut, [1, 2]) is None
    assert observation_from({"stages": details["stages"][:1]}, [1, 2]) is None
