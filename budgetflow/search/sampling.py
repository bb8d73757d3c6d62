"""Repeated sampling for code: fixed best-of-N, and sampling in waves with early stop on the visible tests.

Strategies are handed the public view of a task (no hidden tests). A candidate's selection score is the fraction of
visible tests it passes; a task with no visible tests can only check that the candidate loads.
"""

from __future__ import annotations

from pydantic import BaseModel

from ..budget import Account, BudgetExceeded
from ..llm import LLM
from ..tasks import CodeTask
from ..verifiers.code import program_for
from ..verifiers.unit_tests import UnitTestVerifier
from .result import Candidate, SearchResult, SpendTracker

CODE_STOP = ["\ndef ", "\nclass ", "\nif __name__", "\n```"]


class SamplingParams(BaseModel):
    max_tokens: int = 384
    temperature: float = 0.8
    top_p: float = 0.95
    stop: list[str] = CODE_STOP


class CodeAttempt:
    """The state of sampling one task: candidates so far and the best by visible tests. Spends on `account`."""

    def __init__(self, llm: LLM, task: CodeTask, verifier: UnitTestVerifier, account: Account,
                 params: SamplingParams | None = None):
        self.llm = llm
        self.task = task.public()  # selection never sees hidden tests
        self.verifier = verifier
        self.params = params or SamplingParams()
        self.tracker = SpendTracker(account)
        self.candidates: list[Candidate] = []
        self.best: Candidate | None = None
        self.fractions: list[float] = []  # visible-test pass fraction of each sample
        self.stopped: str | None = None

    @property
    def solved(self) -> bool:
        return self.best is not None and self.best.passed_visible

    def wave(self, k: int) -> None:
        """Generate k samples in one call and check each on the visible tests; records why it stopped if the
        budget ran out."""
        p = self.params
        try:
            gen = self.llm.generate(self.task.prompt, account=self.tracker.generate, n=k, max_tokens=p.max_tokens,
                                    temperature=p.temperature, top_p=p.top_p, stop=p.stop)
        except BudgetExceeded as err:
            self.stopped = f"budget: {err}"
            return
        for completion in gen.completions:
            try:
                report = self.verifier.run(program_for(self.task, completion.text), self.task.visible_tests,
                                           account=self.tracker.verify)
            except BudgetExceeded as err:
                self.stopped = f"budget: {err}"
                self._add(Candidate(text=completion.text, meta={"unverified": True}))
                return
            frac = report.fraction if report.loaded else 0.0
            self.fractions.append(frac)
            self._add(Candidate(text=completion.text, score=frac, passed_visible=report.all_passed,
                                meta={"visible": f"{report.passed}/{report.total}", "loaded": report.loaded}))

    def _add(self, cand: Candidate) -> None:
        self.candidates.append(cand)
        if self.best is None or cand.score > self.best.score:
            self.best = cand

    def result(self, reason: str, notes: list[str] | None = None) -> SearchResult:
        return SearchResult(task_id=self.task.id, best=self.best, reason=reason, samples=len(self.candidates),
                            spend=self.tracker.spend(), notes=notes or [])


def best_of_n(llm: LLM, task: CodeTask, verifier: UnitTestVerifier, *, account: Account, n: int,
              params: SamplingParams | None = None) -> SearchResult:
    """Fixed best-of-N: N samples in one call, all checked, the one passing most visible tests selected."""
    attempt = CodeAttempt(llm, task, verifier, account, params)
    attempt.wave(n)
    if attempt.stopped:
        return attempt.result("budget", [attempt.stopped])
    return attempt.result("solved" if attempt.solved else "exhausted")


def sample_until_pass(llm: LLM, task: CodeTask, verifier: UnitTestVerifier, *, account: Account,
                      max_samples: int = 8, wave_size: int = 1, params: SamplingParams | None = None) -> SearchResult:
    """Sample in waves of `wave_size` until a candidate passes every visible test, `max_samples` are drawn, or the
    budget runs out (then the best so far is returned, with the reason)."""
    attempt = CodeAttempt(llm, task, verifier, account, params)
    while len(attempt.candidates) < max_samples:
        attempt.wave(min(wave_size, max_samples - len(attempt.candidates)))
        if attempt.stopped:
            return attempt.result("budget", [attempt.stopped])
        if attempt.solved:
            return attempt.result("solved")
    return attempt.result("exhausted")
