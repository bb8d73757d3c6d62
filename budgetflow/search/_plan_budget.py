"""`--strategy plan-and-budget`: a task's output-token budget split across the steps of a plan (Plan-and-Budget:
decompose the question into sub-questions, give each a share of the budget that decays with its position — the
first steps set up the rest and are the most uncertain — and answer each under its share).

1. plan: one short capped call lists at most `max_subquestions` sub-questions;
2. budget: B = `total_tokens`, capped by the account's output-token headroom (512 when neither says); what the plan
   used is taken off, and so are the answer caps (one per sub-question and one for the final answer); the rest is
   the thinking pool;
3. each sub-question in turn reasons under its allocation with budget forcing; what a step leaves unused rolls over:
   step i gets the first share of `allocate_budget(pool left, steps left)`, which equals the original schedule
   when every step uses its share exactly;
4. a forced final answer ("The answer is") after the sub-answers.
Anytime: when the ledger refuses a call, the final answer is forced from what is solved (or the last sub-answer).

Schedules (weights w_i of steps i = 0..m-1, shares ∝ w_i, rounded down and the remainder given by largest
fraction, earliest first, so the shares sum to exactly the pool): uniform w_i = 1; linear w_i = m - i; polynomial
w_i = (m - i)^power.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..budget import Account, BudgetExceeded
from ..llm import LLM, budget_forced
from ..tasks import MathTask
from ..verifiers import extract_answer
from ._protocol import Resources, Result, solver
from ._steps import math_result
from ._thinking import forced_details

Schedule = Literal["uniform", "linear", "polynomial"]
DEFAULT_TOTAL_TOKENS = 512  # the budget to split when neither the settings nor the account name one

PLAN_PROMPT = ("Break the math word problem into at most {steps} short sub-questions that lead to its answer, one "
               "per line. Do not answer them.\n\nProblem: {question}\n\nSub-questions:\n1.")
STEP_PROMPT = ("Solve the math word problem one sub-question at a time. Work each out in a few short steps and end "
               "with 'The answer is N.' where N is a number.\n\nProblem: {question}\n\n{solved}"
               "Sub-question: {sub}\nWork:\n")
FINAL_PROMPT = "Solve the math word problem.\n\nProblem: {question}\n\n{solved}So for the whole problem:\n"
_NUMBERING = re.compile(r"^\s*(?:\d+\s*[.):]|[-*•])\s*")

__all__ = ["DEFAULT_TOTAL_TOKENS", "PlanBudgetSettings", "Schedule", "allocate_budget", "parse_plan",
           "plan_and_budget"]


def allocate_budget(total: int, steps: int, schedule: Schedule = "polynomial", power: float = 2.0) -> list[int]:
    """`total` tokens split over `steps` steps by the schedule (see the module); the shares sum to exactly total."""
    if steps <= 0:
        return []
    total = max(0, total)
    exponent = {"uniform": 0.0, "linear": 1.0, "polynomial": power}[schedule]
    weights = [float(steps - i) ** exponent for i in range(steps)]
    exact = [total * w / sum(weights) for w in weights]
    shares = [int(x) for x in exact]
    by_fraction = sorted(range(steps), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in by_fraction[:total - sum(shares)]:
        shares[i] += 1
    return shares


def parse_plan(text: str, limit: int) -> list[str]:
    """The sub-questions of a plan completion (its numbering stripped), at most `limit`."""
    subs = []
    for line in ("1." + text).splitlines():
        if not line.strip():
            if subs:
                break  # a blank line ends the list
            continue
        sub = _NUMBERING.sub("", line).strip()
        if sub:
            subs.append(sub)
    return subs[:limit]


class PlanBudgetSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_subquestions: int = Field(4, ge=1)
    plan_max_tokens: int = Field(96, ge=1)
    # output tokens for the whole task (capped by the account's output-token headroom)
    total_tokens: int | None = Field(None, ge=1)
    schedule: Schedule = "polynomial"
    power: float = Field(2.0, gt=0)  # the polynomial schedule's exponent
    answer_max_tokens: int = Field(12, ge=1)  # each forced answer's cap
    temperature: float = Field(0.0, ge=0)


def plan_and_budget(llm: LLM, task: MathTask, *, account: Account,
                    settings: PlanBudgetSettings | None = None) -> Result:
    s = settings or PlanBudgetSettings()
    start = account.spent().output_tokens
    caps = [x for x in (s.total_tokens, account.headroom_units().get("output_tokens")) if x is not None]
    budget = min(caps) if caps else DEFAULT_TOTAL_TOKENS

    def unspent() -> int:
        return budget - (account.spent().output_tokens - start)

    details: dict = {"budget": budget, "schedule": s.schedule, "allocations": [], "steps": []}
    solved, answer, reason = "", None, "finished"
    try:
        plan_tokens = min(s.plan_max_tokens, budget - 2 * s.answer_max_tokens)
        subs = [task.question]
        if plan_tokens >= 1:
            plan = llm.generate(PLAN_PROMPT.format(steps=s.max_subquestions, question=task.question),
                                account=account, max_tokens=plan_tokens, temperature=0.0, stop=["\n\n"])
            subs = parse_plan(plan.text, s.max_subquestions) or subs
        details["plan_tokens"] = budget - unspent()
        steps = max(0, min(len(subs), unspent() // s.answer_max_tokens - 1))  # room for every answer cap
        subs = subs[:steps]
        details["subquestions"] = subs
        details["planned"] = allocate_budget(unspent() - (steps + 1) * s.answer_max_tokens, steps, s.schedule,
                                             s.power)
        for i, sub in enumerate(subs):
            pool = unspent() - (steps - i + 1) * s.answer_max_tokens
            share = allocate_budget(pool, steps - i, s.schedule, s.power)[0]
            details["allocations"].append(share)
            forced = budget_forced(llm, STEP_PROMPT.format(question=task.question, solved=solved, sub=sub),
                                   account=account, thinking_budget=share, answer_max_tokens=s.answer_max_tokens,
                                   temperature=s.temperature)
            details["steps"].append(forced_details(forced))
            step_answer = extract_answer(forced.samples[0].text)
            solved += f"Sub-question: {sub}\nThe answer is {step_answer}.\n\n"
            answer = step_answer if step_answer is not None else answer
    except BudgetExceeded:
        reason = "budget"
    confidence = None
    try:
        final = budget_forced(llm, FINAL_PROMPT.format(question=task.question, solved=solved), account=account,
                              thinking_budget=0, answer_max_tokens=s.answer_max_tokens)
        sample = final.samples[0]
        if sample.answered:
            solved += sample.text.strip() + "\n"
            answer = extract_answer(sample.text) or answer
            confidence = sample.answer_probability
        else:
            reason = "budget"
    except BudgetExceeded:
        reason = "budget"
    details["output_tokens"] = account.spent().output_tokens - start
    res = math_result(None, task, account, answer, reason, samples=len(details["steps"]), solution=solved)
    res.confidence = confidence
    res.details = details
    return res


@solver("plan-and-budget", kinds=("math",), settings=PlanBudgetSettings)
class PlanBudgetSolver:
    """Plan-and-Budget: sub-questions, each answered under a decaying share of the task's token budget."""

    def __init__(self, settings: PlanBudgetSettings):
        self.settings = settings

    def solve(self, task: MathTask, resources: Resources) -> Result:
        return plan_and_budget(resources.llm, task, account=resources.account, settings=self.settings)
