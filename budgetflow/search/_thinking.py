"""`--strategy think`: math under a thinking-token budget, by budget forcing (see llm.budget_forced).

k samples reason for at most `thinking_budget` tokens each, stopped at "The answer is"; a sample that runs out is
made to answer (the cue appended, `answer_max_tokens` more tokens). The answer is the majority over the samples'
answers; the confidence is its vote share (with one sample: the answer tokens' mean probability).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..budget import Account, BudgetExceeded
from ..llm import LLM, ForcedGeneration, budget_forced
from ..tasks import MathTask
from ..verifiers import extract_answer, majority_vote
from ._protocol import Resources, Result, solver
from ._steps import PROMPT, math_result

__all__ = ["ThinkSettings", "forced_details", "think"]


class ThinkSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    thinking_budget: int = Field(256, ge=0)  # reasoning tokens per sample (0: answer at once)
    answer_max_tokens: int = Field(12, ge=1)  # the forced answer's own cap
    samples: int = Field(1, ge=1)  # k, majority vote over their answers
    temperature: float = Field(0.0, ge=0)


def forced_details(forced: ForcedGeneration) -> dict:
    """What a budget-forced generation did, for Result.details."""
    return {"thinking_budget": forced.thinking_budget, "answer_max_tokens": forced.answer_max_tokens,
            "thought_tokens": [s.thought_tokens for s in forced.samples],
            "answer_tokens": [s.answer_tokens for s in forced.samples],
            "forced": [s.forced for s in forced.samples], "answered": [s.answered for s in forced.samples]}


def think(llm: LLM, task: MathTask, *, account: Account, thinking_budget: int = 256, answer_max_tokens: int = 12,
          samples: int = 1, temperature: float = 0.0) -> Result:
    """Budget-forced chains of thought and a vote over their answers; anytime (an unaffordable answer call leaves
    that sample's last number as its answer, an unaffordable first call answers nothing)."""
    prompt = PROMPT.format(question=task.question)
    try:
        forced = budget_forced(llm, prompt, account=account, thinking_budget=thinking_budget,
                               answer_max_tokens=answer_max_tokens, n=samples, temperature=temperature)
    except BudgetExceeded:
        return math_result(None, task, account, None, "budget", samples=0)
    texts = [s.text for s in forced.samples]
    answers = [extract_answer(t) for t in texts]
    vote = majority_vote(answers)
    complete = len(texts) == samples and all(s.answered for s in forced.samples)
    best = next((t for t, a in zip(texts, answers) if a == vote.answer), texts[0] if texts else "")
    res = math_result(None, task, account, vote.answer, "finished" if complete else "budget", samples=len(texts),
                      solution=best)
    if vote.answer is not None:
        single = forced.samples[0].answer_probability if len(texts) == 1 else None
        res.confidence = single if single is not None else vote.share
    if res.best is not None:
        res.best.score = vote.share
    res.details = {**forced_details(forced), "answers": answers}
    res.notes += forced.notes
    return res


@solver("think", kinds=("math",), settings=ThinkSettings)
class ThinkSolver:
    """Budget forcing: reasoning capped at a thinking budget, then a forced answer; majority over k samples."""

    def __init__(self, settings: ThinkSettings):
        self.settings = settings

    def solve(self, task: MathTask, resources: Resources) -> Result:
        s = self.settings
        return think(resources.llm, task, account=resources.account, thinking_budget=s.thinking_budget,
                     answer_max_tokens=s.answer_max_tokens, samples=s.samples, temperature=s.temperature)
