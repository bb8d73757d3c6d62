"""Repeated sampling for code: fixed best-of-N, and sampling in waves with early stop on the verifier's verdict.

Strategies are handed the public view of a task (no hidden tests) and a `Verifier`; a candidate's selection score is
its verdict's score (for unit tests: the fraction of visible tests it passes). Spending is split on the ledger into
`<account>/generate` (model calls) and `<account>/verify` (checks).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..budget import Account, BudgetExceeded
from ..llm import LLM
from ..tasks import CodeTask
from ..verifiers import Verifier
from ._confidence import checked_confidence
from ._protocol import Candidate, Resources, Result, StopReason, solver

CODE_STOP = ["\ndef ", "\nclass ", "\nif __name__", "\n```"]


class SamplingParams(BaseModel):
    """How one sample is drawn."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: int = Field(384, ge=1)
    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    stop: list[str] = Field(default_factory=lambda: list(CODE_STOP))


class CodeAttempt:
    """The state of sampling one task: candidates so far and the best by its verdict. Spends on `account`'s
    `/generate` and `/verify` sub-accounts."""

    def __init__(self, llm: LLM, task: CodeTask, verifier: Verifier, account: Account,
                 params: SamplingParams | None = None):
        self.llm = llm
        self.task = task.public()  # selection never sees hidden tests
        self.verifier = verifier
        self.params = params or SamplingParams()
        self.account = account
        self.generate = account.child(f"{account.name}/generate")
        self.check = account.child(f"{account.name}/verify")
        self.candidates: list[Candidate] = []
        self.best: Candidate | None = None
        self.fractions: list[float] = []  # verdict score of each checked sample
        self.stopped: str | None = None

    @property
    def solved(self) -> bool:
        return self.best is not None and self.best.passed_visible

    def wave(self, k: int) -> None:
        """Generate k samples in one call and check each; records why it stopped if the budget ran out."""
        p = self.params
        try:
            gen = self.llm.generate(self.task.prompt, account=self.generate, n=k, max_tokens=p.max_tokens,
                                    temperature=p.temperature, top_p=p.top_p, stop=p.stop)
        except BudgetExceeded as err:
            self.stopped = f"budget: {err}"
            return
        for completion in gen.completions:
            n = len(self.candidates)
            try:
                verdict = self.verifier.verify(self.task, completion.text, account=self.check)
            except BudgetExceeded as err:
                self.stopped = f"budget: {err}"
                self._add(Candidate(text=completion.text, id=f"c{n}", meta={"unverified": True}))
                return
            self.fractions.append(verdict.score)
            self._add(Candidate(text=completion.text, score=verdict.score, passed_visible=verdict.passed,
                                verdict=verdict, id=f"c{n}",
                                meta={"visible": f"{verdict.passed_checks}/{verdict.checks}",
                                      "loaded": verdict.loaded}))

    def _add(self, cand: Candidate) -> None:
        self.candidates.append(cand)
        if self.best is None or cand.score > self.best.score:
            self.best = cand

    def confidence(self) -> float | None:
        """The best candidate's visible-test evidence × the share of checked samples that do as well (see
        `_confidence`); None when the best was never checked."""
        verdicts = [c.verdict for c in self.candidates if c.verdict is not None]
        return checked_confidence(self.best.verdict if self.best else None, verdicts, answered=self.best is not None)

    def result(self, reason: StopReason, notes: list[str] | None = None) -> Result:
        return Result(task_id=self.task.id, reason=reason, best=self.best,
                      answer=self.best.text if self.best is not None else None, confidence=self.confidence(),
                      candidates=list(self.candidates),
                      samples=len(self.candidates), spend=self.account.spend_by_part(), account=self.account.name,
                      notes=notes or [])


def best_of_n(llm: LLM, task: CodeTask, verifier: Verifier, *, account: Account, n: int,
              params: SamplingParams | None = None) -> Result:
    """Fixed best-of-N: N samples in one call, all checked, the best verdict selected."""
    attempt = CodeAttempt(llm, task, verifier, account, params)
    attempt.wave(n)
    if attempt.stopped:
        return attempt.result("budget", [attempt.stopped])
    return attempt.result("solved" if attempt.solved else "exhausted")


def sample_until_pass(llm: LLM, task: CodeTask, verifier: Verifier, *, account: Account,
                      max_samples: int = 8, wave_size: int = 1, params: SamplingParams | None = None) -> Result:
    """Sample in waves of `wave_size` until a candidate passes its verifier, `max_samples` are drawn, or the budget
    runs out (then the best so far is returned, with the reason)."""
    attempt = CodeAttempt(llm, task, verifier, account, params)
    while len(attempt.candidates) < max_samples:
        attempt.wave(min(wave_size, max_samples - len(attempt.candidates)))
        if attempt.stopped:
            return attempt.result("budget", [attempt.stopped])
        if attempt.solved:
            return attempt.result("solved")
    return attempt.result("exhausted")


class SampleSettings(SamplingParams):
    max_samples: int = Field(8, ge=1)  # samples per task at most
    wave_size: int = Field(1, ge=1)  # samples per model call


class BestOfNSettings(SamplingParams):
    max_samples: int = Field(8, ge=1)  # N: samples drawn in one call


def _params(settings: SamplingParams) -> SamplingParams:
    return SamplingParams(**{k: getattr(settings, k) for k in SamplingParams.model_fields})


@solver("sample", kinds=("code",), settings=SampleSettings, verifier="unit-tests")
class SampleSolver:
    """Early stop: waves of samples until one passes the verifier (default: the task's visible unit tests)."""

    def __init__(self, settings: SampleSettings):
        self.settings = settings

    def solve(self, task: CodeTask, resources: Resources) -> Result:
        s = self.settings
        return sample_until_pass(resources.llm, task, resources.verifier, account=resources.account,
                                 max_samples=s.max_samples, wave_size=s.wave_size, params=_params(s))


@solver("best-of-n", kinds=("code",), settings=BestOfNSettings, verifier="unit-tests")
class BestOfNSolver:
    """Best-of-N: `max_samples` samples in one batched call, all checked, the best verdict selected."""

    def __init__(self, settings: BestOfNSettings):
        self.settings = settings

    def solve(self, task: CodeTask, resources: Resources) -> Result:
        return best_of_n(resources.llm, task, resources.verifier, account=resources.account,
                         n=self.settings.max_samples, params=_params(self.settings))
