"""Model-generated tests and agreement ranking (CodeT-style dual agreement).

A tester model writes `assert f(...) == ...` lines; every candidate runs against every generated test; candidates
that pass the same set of tests form a consensus group, scored (number of candidates) × (number of tests they pass).
Agreement between independent samples and independent tests is the signal — no hidden test is ever used.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

from pydantic import BaseModel

from ..budget import Account
from ..llm import LLM
from ..tasks import CodeTask
from ._code import program_for
from ._protocol import Verdict, verifier
from ._unit_tests import TestReport, UnitTestVerifier


def tester_prompt(task: CodeTask) -> str:
    return (f"{task.prompt}    pass\n\n\n# check the correctness of {task.entry_point}\n"
            f"def test_{task.entry_point}():\n    assert {task.entry_point}(")


def parse_asserts(text: str, entry_point: str) -> list[str]:
    """Assert lines calling `entry_point`, syntactically valid, deduplicated, in order."""
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line.startswith("assert ") or f"{entry_point}(" not in line:
            continue
        try:
            node = ast.parse(line).body[0]
        except SyntaxError:
            continue
        if isinstance(node, ast.Assert) and line not in out:
            out.append(line)
    return out


def generate_tests(llm: LLM, task: CodeTask, *, account: Account, n: int = 4, max_tokens: int = 160,
                   temperature: float = 0.8) -> list[str]:
    """Ask the model for tests of `task` (n samples); returns the distinct valid asserts it wrote."""
    prompt = tester_prompt(task)
    gen = llm.generate(prompt, account=account, n=n, max_tokens=max_tokens, temperature=temperature,
                       stop=["\ndef ", "\nclass ", "\nif __name__", "\n```"])
    tests: list[str] = []
    for c in gen.completions:
        for t in parse_asserts(f"    assert {task.entry_point}(" + c.text, task.entry_point):
            if t not in tests:
                tests.append(t)
    return tests


class RankedCandidate(BaseModel):
    index: int  # position in the candidate list given
    score: float  # consensus-group score: group size × tests passed by the group
    group_size: int
    tests_passed: int


def agreement_ranking(reports: Sequence[TestReport]) -> list[RankedCandidate]:
    """Rank candidates by CodeT dual agreement, best first (ties: earlier candidate first)."""
    groups: dict[tuple[bool, ...], list[int]] = {}
    for i, r in enumerate(reports):
        groups.setdefault(r.signature if r.loaded else ("unloaded",), []).append(i)  # type: ignore[arg-type]
    ranked: list[RankedCandidate] = []
    for i, r in enumerate(reports):
        key = r.signature if r.loaded else ("unloaded",)
        size = len(groups[key])  # type: ignore[index]
        passed = r.passed if r.loaded else 0
        ranked.append(RankedCandidate(index=i, score=float(size * passed), group_size=size, tests_passed=passed))
    return sorted(ranked, key=lambda c: (-c.score, c.index))


def rank_by_generated_tests(verifier: UnitTestVerifier, programs: Sequence[str], tests: Sequence[str], *,
                            account: Account) -> list[RankedCandidate]:
    """Run every program against the generated tests (one sandbox run each) and rank by agreement."""
    reports = [verifier.run(p, tests, account=account) for p in programs]
    return agreement_ranking(reports)


@verifier("generated-tests", kinds=("code",))
class GeneratedTestsVerifier:
    """CodeT as a verifier: the model writes tests for the task once per `verify_all` (on the account given), every
    candidate runs them in the sandbox, and a candidate's score is its consensus group's agreement score relative to
    the best group's. A candidate passes when it is in the best group and passes every generated test."""

    name = "generated-tests"

    def __init__(self, llm: LLM, runner: UnitTestVerifier | None = None, *, n: int = 4, max_tokens: int = 160):
        self.llm = llm
        self.runner = runner or UnitTestVerifier()
        self.n, self.max_tokens = n, max_tokens

    def verify(self, task: CodeTask, candidate: str, *, account: Account) -> Verdict:
        return self.verify_all(task, [candidate], account=account)[0]

    def verify_all(self, task: CodeTask, candidates: Sequence[str], *, account: Account) -> list[Verdict]:
        tests = generate_tests(self.llm, task, account=account, n=self.n, max_tokens=self.max_tokens)
        reports = [self.runner.run(program_for(task, c), tests, account=account) for c in candidates]
        ranked = {r.index: r for r in agreement_ranking(reports)}
        best = max((r.score for r in ranked.values()), default=0.0)
        out = []
        for i, report in enumerate(reports):
            v = report.verdict()
            score = ranked[i].score / best if best else 0.0
            top = best > 0 and ranked[i].score == best
            out.append(v.model_copy(update={"score": score, "passed": top and v.passed,
                                            "detail": f"{ranked[i].tests_passed}/{len(tests)} generated tests, "
                                                      f"group of {ranked[i].group_size}"}))
        return out
