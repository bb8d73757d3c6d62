"""Agreement ranking, execution clustering and majority vote, on real sandbox runs."""

from __future__ import annotations

from budgetflow.verifiers import (
    UnitTestVerifier,
    agreement_ranking,
    cluster_by_behaviour,
    cut_at_answer,
    extract_answer,
    inputs_from_asserts,
    majority_vote,
    parse_asserts,
    rank_by_generated_tests,
)

RIGHT = "def sq(x):\n    return x * x\n"
RIGHT_TOO = "def sq(x):\n    return x ** 2\n"
WRONG = "def sq(x):\n    return x + x\n"
BROKEN = "def sq(x) return"


def test_agreement_ranking_prefers_the_consensus(sandbox, account):
    # two generated tests are right, one is wrong (as model-written tests often are)
    tests = ["assert sq(3) == 9", "assert sq(2) == 4", "assert sq(3) == 6"]
    ranked = rank_by_generated_tests(UnitTestVerifier(sandbox), [WRONG, RIGHT, BROKEN, RIGHT_TOO], tests,
                                     account=account)
    assert [r.index for r in ranked[:2]] == [1, 3]
    assert ranked[0].group_size == 2 and ranked[0].tests_passed == 2 and ranked[0].score == 4
    assert ranked[-1].index == 2 and ranked[-1].score == 0


def test_clustering_groups_same_behaviour(sandbox, account):
    inputs = inputs_from_asserts(["assert sq(3) == 9", "assert sq(-2) == 4", "assert  sq(3)==9"], "sq")
    assert inputs == ["sq(3)", "sq(-2)"]
    clusters = cluster_by_behaviour(UnitTestVerifier(sandbox), [WRONG, RIGHT, RIGHT_TOO, BROKEN], inputs,
                                    account=account)
    assert [c.members for c in clusters] == [[1, 2], [0]]
    assert clusters[0].behaviour == ("9", "4")
    assert account.spent().calls == 4  # one sandbox run per candidate, each reserved on the account


def test_parse_asserts_keeps_valid_calls_of_the_entry_point():
    text = "    assert sq(2) == 4\n    assert sq(3 == 9\n    assert other(1) == 1\n    assert sq(2) == 4\nx = 1"
    assert parse_asserts(text, "sq") == ["assert sq(2) == 4"]


def test_majority_vote_and_answer_extraction():
    assert extract_answer("5 * 2 = 10\nThe answer is 1,200.") == "1200"
    assert extract_answer("so she has 18 left\n#### 18") == "18"
    assert extract_answer("no number here") is None
    vote = majority_vote(["3", None, "4", "3", "4", "3"])
    assert vote.answer == "3" and vote.votes == 3 and vote.share == 0.6
    assert majority_vote(["4", "3"], weights=[0.2, 0.9]).answer == "3"
    assert majority_vote([None]).answer is None


def test_a_rambling_solution_is_cut_after_its_first_answer():
    # what Qwen2.5-Coder writes on GSM8K: the answer, then more prose that restates other numbers
    text = "3 * 7 = 21\n21 + 19 = 40\n\nThe answer is 1,040. So 40 kittens... The answer is 40, which is it."
    assert cut_at_answer(text) == "3 * 7 = 21\n21 + 19 = 40\n\nThe answer is 1,040"
    assert extract_answer(cut_at_answer(text)) == "1040" and extract_answer(text) == "40"
    assert cut_at_answer("The answer is $12.50 in total") == "The answer is $12.50"
    assert cut_at_answer("no final statement, 5 apples") == "no final statement, 5 apples"


def test_agreement_ranking_on_reports_directly(sandbox, account):
    v = UnitTestVerifier(sandbox)
    reports = [v.run(p, ["assert sq(1) == 1"], account=account) for p in (RIGHT, WRONG)]
    assert agreement_ranking(reports)[0].index == 0
