"""Step-level search over partial solutions (math word problems), shared by beam search, MCTS and A*-decoding.

A node is a partial solution: the steps (lines) written so far. Expanding a node asks the model for k next steps in
one call (n=k, stop at the end of the line, with token log-probabilities). A node's value in (0, 1] is its process
score: by default the model's own per-token probability of the path (exp of the mean log-probability), or, with a
judge, the model's P("Yes") that the steps so far are correct. How many children a node gets is its node-level
expansion budget (LiteSearch): fewer for confident nodes, more for doubtful ones, capped.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ..budget import Account, BudgetExceeded
from ..llm import LLM
from ..tasks import MathTask
from ..verifiers import LogprobJudge, extract_answer, majority_vote
from ._protocol import Candidate, Result

PROMPT = ("Solve the math word problem step by step, one short step per line. "
          "End with a line 'The answer is N.' where N is a number.\n\n"
          "Problem: {question}\n\nSolution:\n")
_FINAL = re.compile(r"answer is", re.IGNORECASE)


class StepConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step_max_tokens: int = 64
    max_depth: int = 12
    temperature: float = 0.8
    max_children: int = 4  # cap of the node-level expansion budget
    confidence: float = 0.9  # LiteSearch: want P(some child is good) ≥ this
    score: Literal["logprob", "judge"] = "logprob"
    max_expansions: int = 64  # expansions per task (a hard cap besides the budget)


@dataclass(eq=False)
class Node:
    steps: tuple[str, ...]
    logprob: float = 0.0  # sum over the path's tokens
    tokens: int = 0
    value: float = 1.0  # process score in (0, 1]
    terminal: bool = False
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)
    visits: int = 0
    total: float = 0.0  # MCTS: sum of backed-up values
    expanded: bool = False

    @property
    def text(self) -> str:
        return "".join(s + "\n" for s in self.steps)

    @property
    def answer(self) -> str | None:
        return extract_answer(self.steps[-1]) if self.terminal and self.steps else None

    @property
    def mean_logprob(self) -> float:
        return self.logprob / self.tokens if self.tokens else 0.0


def expansion_budget(value: float, cfg: StepConfig) -> int:
    """LiteSearch-style: the number of children k with 1 - (1 - v)^k ≥ confidence, between 1 and the cap."""
    v = min(max(value, 0.05), 0.95)
    return max(1, min(cfg.max_children, math.ceil(math.log(1 - cfg.confidence) / math.log(1 - v))))


class StepSearch:
    """Expands nodes of one task's tree, all spending on one account; counts expansions and generated steps."""

    def __init__(self, llm: LLM, task: MathTask, account: Account, cfg: StepConfig, judge: LogprobJudge | None = None):
        self.llm = llm
        self.task = task
        self.account = account
        self.cfg = cfg
        self.judge = judge if judge is not None else (LogprobJudge(llm) if cfg.score == "judge" else None)
        self.prompt = PROMPT.format(question=task.question)
        self.root = Node(steps=())
        self.expansions = 0
        self.steps_generated = 0

    def can_expand(self) -> bool:
        return self.expansions < self.cfg.max_expansions

    def expand(self, node: Node, k: int | None = None) -> list[Node]:
        """Generate k next steps of `node` (one call) and return the new, distinct children. Raises BudgetExceeded
        when the budget affords no call."""
        if k is None:  # the root has no score yet: it gets the full budget
            k = expansion_budget(node.value, self.cfg) if node.steps else self.cfg.max_children
        k = self.affordable_children(k)
        # min_tokens=2: a blank line is not a step (vLLM does not stop on a stop string before min_tokens)
        gen = self.llm.generate(self.prompt + node.text, account=self.account, n=k,
                                max_tokens=self.cfg.step_max_tokens, temperature=self.cfg.temperature,
                                stop=["\n"], logprobs=0, min_tokens=2)
        self.expansions += 1
        node.expanded = True
        seen: set[str] = {c.steps[-1] for c in node.children if c.steps and len(c.steps) > len(node.steps)}
        new: list[Node] = []
        for c in gen.completions:
            step = c.text.strip()
            self.steps_generated += 1
            if step in seen or (not step and not node.steps):
                continue  # a repeat, or a blank first line (no step at all)
            seen.add(step)
            lp = c.sum_logprob
            ntok = len(c.logprobs or []) or 1
            steps = node.steps + (step,) if step else node.steps
            # a step cut short by max_tokens stays open (the next expansion goes on from it)
            terminal = not step or bool(_FINAL.search(step)) or len(steps) >= self.cfg.max_depth
            child = Node(steps=steps, logprob=node.logprob + lp, tokens=node.tokens + ntok, terminal=terminal,
                         parent=node)
            child.value = self.value(child)
            node.children.append(child)
            new.append(child)
        return new

    def affordable_children(self, k: int) -> int:
        """Fewer children when the output-token budget left cannot hold k full steps: a few whole steps are worth
        more than k steps the engine would cut short to fit (a cut step stays open and must be paid for again)."""
        left = self.account.headroom_units().get("output_tokens")
        if left is None:
            return k
        return max(1, min(k, left // self.cfg.step_max_tokens))

    def value(self, node: Node) -> float:
        if self.judge is not None and node.steps:
            try:
                return self.judge.verdict(self.prompt, node.text, account=self.account).p_yes
            except BudgetExceeded:
                pass  # no budget to judge: fall back to the free logprob score
        return math.exp(node.mean_logprob)

    def final_answer(self, terminals: list[Node]) -> tuple[str | None, Node | None]:
        """Value-weighted vote over the finished paths' answers; the best-valued path with that answer."""
        answers = [extract_answer(n.text) for n in terminals]
        vote = majority_vote(answers, [n.value for n in terminals])
        if vote.answer is None:
            return None, max(terminals, key=lambda n: n.value) if terminals else None
        best = max((n for n, a in zip(terminals, answers) if a == vote.answer), key=lambda n: n.value)
        return vote.answer, best

    @staticmethod
    def path_confidence(terminals: list[Node], answer: str | None) -> float:
        """Confidence in `answer`: the mean over finished paths of value × (the path reaches `answer`) — the
        value-weighted vote share, shrunk by how much the paths are worth: one finished path gives its own value,
        unanimous paths of value 1 give 1, and paths with no answer count against it."""
        if answer is None or not terminals:
            return 0.0
        return min(1.0, sum(n.value for n in terminals if extract_answer(n.text) == answer) / len(terminals))


def math_result(search: StepSearch | None, task: MathTask, account: Account, answer: str | None, reason: str,
                best: Node | None = None, samples: int | None = None, solution: str | None = None,
                confidence: float | None = None) -> Result:
    """A math search's answer as a `Result`: the best path (or full solution) is the candidate, its answer the
    answer, with the search's `confidence` in it; what was spent is read from the ledger."""
    text = solution if solution is not None else (best.text if best else "")
    cand = Candidate(text=text, score=best.value if best else 0.0, meta={"answer": answer}) if text or answer else None
    return Result(task_id=task.id, reason=reason, best=cand, answer=answer, confidence=confidence,
                  candidates=[cand] if cand else [],
                  samples=samples if samples is not None else (search.steps_generated if search else 0),
                  expansions=search.expansions if search else 0, spend=account.spend_by_part(),
                  account=account.name)
