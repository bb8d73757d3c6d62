"""A generative verifier that judges with the model's own probabilities (via `LLM.score`, one prefill each):

- `path_score`: how likely the model finds a (partial) solution — mean log-probability per token.
- `verdict`: P("Yes") vs P("No") after asking whether a (partial) solution is correct so far.
"""

from __future__ import annotations

import math

from pydantic import BaseModel

from ..budget import Account
from ..llm import LLM
from ._protocol import Verdict, verifier

JUDGE_TEMPLATE = ("{problem}\n\nProposed solution (possibly unfinished):\n{solution}\n\n"
                  "Question: Is every step of the proposed solution so far correct? Answer Yes or No.\nAnswer:")


class Judgement(BaseModel):
    p_yes: float  # in (0, 1)
    logprob_yes: float
    logprob_no: float


@verifier("judge", kinds=("math", "code"))
class LogprobJudge:
    """As a `Verifier`: the model's P("Yes") that a candidate is correct is its score (passed above one half)."""

    name = "judge"

    def __init__(self, llm: LLM, template: str = JUDGE_TEMPLATE):
        self.llm = llm
        self.template = template

    def verify(self, task, candidate: str, *, account: Account) -> Verdict:
        problem = getattr(task, "question", None) or getattr(task, "prompt", None) or getattr(task, "issue", "")
        judged = self.verdict(problem, candidate, account=account)
        return Verdict(passed=judged.p_yes >= 0.5, score=judged.p_yes, checks=1, passed_checks=int(judged.p_yes >= 0.5),
                       detail=f"P(correct) = {judged.p_yes:.3f}")

    def path_score(self, prompt: str, continuation: str, *, account: Account) -> float:
        """Mean log-probability per token the model gives `continuation` after `prompt` (≤ 0; higher is likelier)."""
        return self.llm.score(prompt, continuation, account=account).mean

    def verdict(self, problem: str, solution: str, *, account: Account) -> Judgement:
        """The model's probability that the solution is correct so far, from its own Yes/No log-probabilities."""
        prompt = self.template.format(problem=problem, solution=solution)
        yes = self.llm.score(prompt, " Yes", account=account).total
        no = self.llm.score(prompt, " No", account=account).total
        top = max(yes, no)
        p = math.exp(yes - top) / (math.exp(yes - top) + math.exp(no - top))
        return Judgement(p_yes=min(max(p, 1e-9), 1 - 1e-9), logprob_yes=yes, logprob_no=no)
