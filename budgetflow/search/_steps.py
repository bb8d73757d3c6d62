"""Step-level search over partial solutions (math word problems), shared by beam search, MCTS and A*-decoding.

A node is a partial solution: the steps (lines) written so far. Expanding a node asks the model for k next steps in
one call (n=k, stop at the end of the line, with token log-probabilities); `expand_all` expands several nodes at once
(concurrent calls, which the engine batches). A rollout asks for k whole solutions from a node in one call and adds
each, line by line, to the tree, so every line it paid for stays reusable as a prefix. A node's value in (0, 1] is its
process score: by default the model's own per-token probability of the path (exp of the mean log-probability), or,
with a judge, the model's P("Yes") that the steps so far are correct. How many children a node gets is its node-level
expansion budget (LiteSearch): fewer for confident nodes, more for doubtful ones, capped.
"""

from __future__ import annotations

import math
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ..budget import Account, BudgetExceeded
from ..llm import LLM
from ..tasks import MathTask
from ..verifiers import LogprobJudge, cut_at_answer, extract_answer, majority_vote
from ._protocol import Candidate, Result

PROMPT = ("Solve the math word problem step by step, one short step per line. "
          "End with a line 'The answer is N.' where N is a number.\n\n"
          "Problem: {question}\n\nSolution:\n")
# a stated final answer: "The answer is 18.", "#### 18", "Final answer: $18", "\\boxed{18}" (a number must follow:
# "let us find the answer: first ..." is not one)
_FINAL = re.compile(r"(?:answer is|####|answer:)\s*\$?\s*-?[\d,]*\.?\d|\\boxed\{\s*-?[\d,]*\.?\d", re.IGNORECASE)


def is_final(step: str) -> bool:
    return bool(_FINAL.search(step))


class StepConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step_max_tokens: int = 64
    max_depth: int = 12
    temperature: float = 0.8
    max_children: int = 4  # cap of the node-level expansion budget
    confidence: float = 0.9  # LiteSearch: want P(some child is good) ≥ this
    score: Literal["logprob", "judge"] = "logprob"
    max_expansions: int = 64  # expansions per task (a hard cap besides the budget)
    rollout_max_tokens: int = 320  # a whole solution from a node (MCTS simulations)


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
        self._lock = threading.Lock()

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
        with self._lock:
            self.expansions += 1
            self.steps_generated += len(gen.completions)
        node.expanded = True
        seen: set[str] = {c.steps[-1] for c in node.children if c.steps and len(c.steps) > len(node.steps)}
        new: list[Node] = []
        for c in gen.completions:
            step = c.text.strip()
            if not step or step in seen:
                # a repeat, or a blank line: no step (a blank line used to end the path, so a paragraph break
                # "finished" a solution with whatever number its last line held)
                continue
            seen.add(step)
            new.append(self._add_child(node, step, c.sum_logprob, len(c.logprobs or []) or 1))
        return new

    def _add_child(self, node: Node, step: str, logprob: float, tokens: int, *, depth_cap: bool = True) -> Node:
        """The child of `node` whose last step is `step` (an existing one if the tree already has it: a prefix
        written twice is one node)."""
        for c in node.children:
            if c.steps[-1] == step:
                return c
        steps = node.steps + (step,)
        terminal = is_final(step) or (depth_cap and len(steps) >= self.cfg.max_depth)
        child = Node(steps=steps, logprob=node.logprob + logprob, tokens=node.tokens + tokens, terminal=terminal,
                     parent=node)
        child.value = self.value(child)
        node.children.append(child)
        return child

    def expand_all(self, nodes: list[Node]) -> list[Node]:
        """Expand several nodes at once: one call each, concurrent, so the engine batches them (one engine step
        serves every sibling and every node, and the shared prompt prefix is cached). Children of the calls that
        went through stay in the tree when another one is refused; the refusal is raised after all have ended."""
        if len(nodes) <= 1:
            return [c for n in nodes for c in self.expand(n)]
        with ThreadPoolExecutor(len(nodes)) as pool:
            futures = [pool.submit(self.expand, n) for n in nodes]
        children, refused = [], None
        for f in futures:
            try:
                children.extend(f.result())
            except BudgetExceeded as err:
                refused = err
        if refused is not None and not children:
            raise refused
        return children

    def rollout(self, node: Node, k: int) -> list[Node]:
        """k whole solutions from `node` in one call (n=k); each is cut after its final answer and added to the tree
        line by line. Returns each solution's last node: terminal when it states an answer or the model ended it,
        open when it was cut by max_tokens (a later rollout can go on from it). Raises BudgetExceeded when the
        budget affords no call."""
        k = self.affordable_children(k, self.cfg.rollout_max_tokens)
        gen = self.llm.generate(self.prompt + node.text, account=self.account, n=k,
                                max_tokens=self.cfg.rollout_max_tokens, temperature=self.cfg.temperature, logprobs=0)
        with self._lock:
            self.expansions += 1
            self.steps_generated += len(gen.completions)
        node.expanded = True
        leaves = []
        for c in gen.completions:
            leaf = node
            for line, (lp, ntok) in _lines_with_logprobs(cut_at_answer(c.text), c.logprobs or []):
                leaf = self._add_child(leaf, line, lp, ntok, depth_cap=False)  # a whole solution is not cut
                if leaf.terminal:
                    break
            if leaf is not node:
                # the model ended its solution: its last number is its answer
                leaf.terminal = leaf.terminal or c.finish_reason == "stop"
                leaves.append(leaf)
        return leaves

    def affordable_children(self, k: int, tokens_each: int | None = None) -> int:
        """Fewer children when the output-token budget left cannot hold k full steps: a few whole steps are worth
        more than k steps the engine would cut short to fit (a cut step stays open and must be paid for again)."""
        left = self.account.headroom_units().get("output_tokens")
        if left is None:
            return k
        return max(1, min(k, left // (tokens_each or self.cfg.step_max_tokens)))

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


def _lines_with_logprobs(text: str, tokens: list) -> list[tuple[str, tuple[float, int]]]:
    """The non-blank lines of `text`, each with the sum of its tokens' log-probabilities and their count (a token
    belongs to the line it starts in; blank lines' tokens go to the line before). Tokens past `text` (after a cut)
    are not counted."""
    lines: list[tuple[str, tuple[float, int]]] = []
    per_line: dict[int, list[float]] = {}
    offset, line_no = 0, 0
    for tok in tokens:
        if offset >= len(text):
            break
        per_line.setdefault(line_no, []).append(tok.logprob)
        line_no += tok.token.count("\n")
        offset += len(tok.token)
    carry_lp, carry_n = 0.0, 0
    for i, line in enumerate(text.split("\n")):
        lps = per_line.get(i, [])
        carry_lp, carry_n = carry_lp + sum(lps), carry_n + len(lps)
        if line.strip():
            lines.append((line.strip(), (carry_lp, max(1, carry_n))))
            carry_lp, carry_n = 0.0, 0
        elif lines:  # a blank line's tokens belong to the step before it
            prev, (lp, n) = lines[-1]
            lines[-1] = (prev, (lp + carry_lp, n + carry_n))
            carry_lp, carry_n = 0.0, 0
    return lines

def math_result(search: StepSearch | None, task: MathTask, account: Account, answer: str | None, reason: str,
                best: Node | None = None, samples: int | None = None, solution: str | None = None,
                confidence: float | None = None) -> Result:
    """A math search's answer as a `Result`: the best path (or full solution) is the candidate, its answer the
    answer, with the search's `confidence` in it; what was spent is read from the ledger."""
    text = solution if solution is not None else (best.text if best else "")
    cand = Candidate(text=text, score=best.value if best else 0.0, meta={"answer": answer}) if text or answer else None
    if confidence is None and best is not None and answer is not None:
        confidence = best.value  # no finished path voted: the best path's own process score
    details = tree_stats(search.root) if search else {}
    if best is not None:
        details["path_tokens"] = best.tokens  # the answer's own path: what a search spent beyond it is overhead
    return Result(task_id=task.id, reason=reason, kind="math", best=cand, answer=answer,
                  confidence=None if confidence is None else min(1.0, max(0.0, confidence)),
                  candidates=[cand] if cand else [],
                  samples=samples if samples is not None else (search.steps_generated if search else 0),
                  expansions=search.expansions if search else 0, spend=account.spend_by_part(),
                  account=account.name, details=details)


def tree_stats(root: Node) -> dict:
    """How the tree grew: nodes, finished paths, deepest line, nodes below the root with more than one child."""
    nodes, stack = [], [root]
    while stack:
        n = stack.pop()
        nodes.append(n)
        stack.extend(n.children)
    return {"finished_paths": sum(n.terminal for n in nodes),
            "tree": {"nodes": len(nodes) - 1, "max_depth": max(len(n.steps) for n in nodes),
                     "branched_below_root": sum(len(n.children) > 1 for n in nodes if n is not root)}}
