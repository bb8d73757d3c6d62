"""Beam search, MCTS and A*-decoding over partial solutions (see steps.py), and the baseline they are compared
with: N full samples and a majority vote. All anytime: when the budget runs out they answer from what they have."""

from __future__ import annotations

import heapq
import itertools
import math
from collections import Counter

from pydantic import BaseModel, ConfigDict, Field

from ..budget import Account, BudgetExceeded
from ..llm import LLM
from ..tasks import MathTask
from ..verifiers import LogprobJudge, cut_at_answer, extract_answer, majority_vote
from ._confidence import vote_confidence
from ._protocol import Resources, Result, solver
from ._steps import PROMPT, Node, StepConfig, StepSearch, math_result


def _partial_answer(search: StepSearch, terminals: list[Node], frontier: list[Node]):
    """Anytime answer, its path and the confidence in it: a vote over finished paths (confidence: the mean of value ×
    agreement, `path_confidence`), else the most valuable unfinished path's last number (confidence: its value)."""
    if terminals:
        answer, best = search.final_answer(terminals)
        return answer, best, search.path_confidence(terminals, answer)
    if frontier:
        best = max(frontier, key=lambda n: n.value)
        answer = extract_answer(best.text)
        return answer, best, min(1.0, best.value) if answer is not None else 0.0
    return None, None, 0.0


def majority_of_n(llm: LLM, task: MathTask, *, account: Account, n: int = 8, max_tokens: int = 384,
                  temperature: float = 0.8, wave_size: int = 4) -> Result:
    """Baseline: full solutions in waves of `wave_size` until n, then a majority vote over their answers."""
    prompt = PROMPT.format(question=task.question)
    texts: list[str] = []
    reason = "finished"
    while len(texts) < n:
        try:
            gen = llm.generate(prompt, account=account, n=min(wave_size, n - len(texts)), max_tokens=max_tokens,
                               temperature=temperature)
        except BudgetExceeded:
            reason = "budget"
            break
        texts.extend(cut_at_answer(c.text) for c in gen.completions)
    answers = [extract_answer(t) for t in texts]
    vote = majority_vote(answers)
    best = next((t for t, a in zip(texts, answers) if a == vote.answer), "")
    # confidence: the winner's votes over every sample drawn (one with no answer counts against it)
    res = math_result(None, task, account, vote.answer, reason, samples=len(texts), solution=best,
                      confidence=vote_confidence(vote.votes, len(texts)))
    res.details["votes"] = dict(Counter(a for a in answers if a is not None))
    res.details["finished_paths"] = sum(a is not None for a in answers)
    if res.best is not None:
        res.best.score = vote.share
    return res


def beam_search(llm: LLM, task: MathTask, *, account: Account, width: int = 3, cfg: StepConfig | None = None,
                judge: LogprobJudge | None = None) -> Result:
    """Keep the `width` most valuable partial solutions per depth; each is expanded by its node budget, all of a
    depth's nodes at once (concurrent calls the engine batches into one step)."""
    cfg = cfg or StepConfig()
    search = StepSearch(llm, task, account, cfg, judge)
    beam, terminals, reason = [search.root], [], "finished"
    try:
        while beam and len(terminals) < width:
            if not search.can_expand():
                reason = "exhausted"
                break
            children = search.expand_all(beam[:cfg.max_expansions - search.expansions])
            terminals += [c for c in children if c.terminal]
            beam = sorted((c for c in children if not c.terminal), key=lambda c: -c.value)[:width - len(terminals)]
        if not beam and not terminals:
            reason = "exhausted"  # every path was a dead end
    except BudgetExceeded:
        reason = "budget"
    answer, best, confidence = _partial_answer(search, terminals, beam)
    return math_result(search, task, account, answer, reason, best, confidence=confidence)


def mcts(llm: LLM, task: MathTask, *, account: Account, iterations: int = 16, want_answers: int = 4,
         c_puct: float = 1.0, rollouts: int = 2, widen: float = 1.0, cfg: StepConfig | None = None,
         judge: LogprobJudge | None = None) -> Result:
    """Monte-Carlo tree search with rollouts: select a prefix by PUCT, branch there, and simulate — `rollouts`
    whole solutions from it in one n>1 call, each added to the tree line by line and backed up with its process
    score. Every iteration finishes paths, and every line paid for stays a prefix later iterations branch from
    (progressive widening: a node takes a new branch while it has fewer than `widen`·√(visits+1) children). Answers
    by a value-weighted vote over the finished paths. Stops after `iterations`, `want_answers` finished paths, or the
    budget."""
    cfg = cfg or StepConfig()
    search = StepSearch(llm, task, account, cfg, judge)
    reason = "finished"
    try:
        for _ in range(iterations):
            if len(_finished(search.root)) >= want_answers:
                break
            if not search.can_expand():
                reason = "exhausted"
                break
            node = _select(search.root, c_puct, widen)
            if node is None:
                reason = "exhausted"  # every path is finished and no node may branch
                break
            k = min(rollouts, want_answers - len(_finished(search.root))) if node.steps else rollouts
            for leaf in search.rollout(node, max(1, k)):
                _backup(leaf, leaf.value)
        else:
            reason = "exhausted" if len(_finished(search.root)) < want_answers else "finished"
    except BudgetExceeded:
        reason = "budget"
    terminals = _finished(search.root)
    leaves = [n for n in _walk(search.root) if not n.children and not n.terminal and n.steps]
    answer, best, confidence = _partial_answer(search, terminals, leaves)
    return math_result(search, task, account, answer, reason, best, confidence=confidence)


def _select(root: Node, c_puct: float, widen: float) -> Node | None:
    """Descend by PUCT (mean backed-up value + prior-weighted exploration) until a node that may take a new branch:
    one with room under progressive widening, or whose children are all finished. None: nothing can branch."""
    node = root
    while True:
        open_children = [c for c in node.children if not c.terminal]
        # √(visits+1): a line of one rollout (1 visit) may branch; a prefix many rollouts went through has room
        # for more branches only as its visits grow
        if not node.terminal and (len(node.children) < math.ceil(widen * math.sqrt(node.visits + 1))
                                  or not open_children):
            return node
        if not open_children:
            return None
        parent_visits = max(1, node.visits)
        node = max(open_children, key=lambda c: (c.total / c.visits if c.visits else c.value)
                   + c_puct * c.value * math.sqrt(parent_visits) / (1 + c.visits))


def _backup(leaf: Node, value: float) -> None:
    node: Node | None = leaf
    while node is not None:
        node.visits += 1
        node.total += value
        node = node.parent


def _finished(root: Node) -> list[Node]:
    return [n for n in _walk(root) if n.terminal]


def astar(llm: LLM, task: MathTask, *, account: Account, want_answers: int = 1, expected_tokens: int = 120,
          children: int = 1, sibling_penalty: float = 0.2, cfg: StepConfig | None = None,
          judge: LogprobJudge | None = None) -> Result:
    """A*-decoding: always expand the partial solution with the lowest f = g + h, where g = -(sum of token
    log-probabilities so far) and h = (its mean negative log-probability per token) × (tokens still expected,
    learned from finished paths). With a judge, f is scaled by -log(P(correct so far)). The first finished path
    popped is the answer (or a vote over the first `want_answers`).

    Partial expansion: a pop writes `children` next steps (1 by default), and the node goes back on the queue with
    the f of its best child plus `sibling_penalty` nats per expected token per expansion, so a sibling is written
    only when every path written so far looks worse than that. Writing k siblings per pop and following one paid
    about k times a single sample's tokens for the same path."""
    cfg = cfg or StepConfig()
    search = StepSearch(llm, task, account, cfg, judge)
    counter = itertools.count()
    lengths: list[int] = []

    def expected() -> float:
        return sum(lengths) / len(lengths) if lengths else expected_tokens

    def f(n: Node) -> float:
        per_token = -n.mean_logprob if n.tokens else 0.0
        g = -n.logprob
        h = per_token * max(0.0, expected() - n.tokens)
        judged = -math.log(max(n.value, 1e-6)) if search.judge is not None else 0.0
        return g + h + judged

    def sibling_f(n: Node) -> float:
        """Where a node goes back on the queue: its next child would be a sibling of those written, assumed about
        as good as the best of them (the root has no cost of its own to go by), plus a penalty per time."""
        base = min((f(c) for c in n.children), default=f(n))
        return max(f(n), base) + sibling_penalty * expected() * n.visits

    queue: list[tuple[float, int, Node]] = [(0.0, next(counter), search.root)]
    finished: list[Node] = []
    reason = "finished"
    try:
        while queue and len(finished) < want_answers:
            _, _, node = heapq.heappop(queue)
            if node.terminal:
                finished.append(node)
                lengths.append(node.tokens)
                continue
            if not search.can_expand():
                heapq.heappush(queue, (sibling_f(node), next(counter), node))
                reason = "exhausted"
                break
            node.visits += 1
            for child in search.expand(node, k=children):
                heapq.heappush(queue, (f(child), next(counter), child))
            heapq.heappush(queue, (sibling_f(node), next(counter), node))
        if not queue and len(finished) < want_answers:
            reason = "exhausted"
    except BudgetExceeded:
        reason = "budget"
    frontier = [n for _, _, n in queue if not n.terminal and n.steps]
    answer, best, confidence = _partial_answer(search, finished or [n for _, _, n in queue if n.terminal], frontier)
    return math_result(search, task, account, answer, reason, best, confidence=confidence)


def _walk(node: Node):
    yield node
    for c in node.children:
        yield from _walk(c)


# ---------------------------------------------------------------------------------------------- registered solvers


class MajoritySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_samples: int = Field(8, ge=1)  # full solutions
    max_tokens: int = Field(384, ge=1)
    temperature: float = Field(0.8, ge=0)
    wave_size: int = Field(4, ge=1)


class BeamSettings(StepConfig):
    width: int = Field(3, ge=1)


class MCTSSettings(StepConfig):
    iterations: int = Field(16, ge=1)
    want_answers: int = Field(4, ge=1)
    c_puct: float = Field(1.0, ge=0)
    rollouts: int = Field(2, ge=1)  # whole solutions simulated per iteration, in one call
    widen: float = Field(1.0, gt=0)


class AStarSettings(StepConfig):
    want_answers: int = Field(1, ge=1)
    expected_tokens: int = Field(120, ge=1)
    children: int = Field(1, ge=1)  # next steps written per pop
    sibling_penalty: float = Field(0.2, ge=0)  # nats per expected token: higher is greedier


def _step_config(settings: StepConfig) -> StepConfig:
    return StepConfig(**{k: getattr(settings, k) for k in StepConfig.model_fields})


@solver("majority", kinds=("math",), settings=MajoritySettings)
class MajoritySolver:
    """Self-consistency: full solutions in waves, then a majority vote over their final answers."""

    def __init__(self, settings: MajoritySettings):
        self.settings = settings

    def solve(self, task: MathTask, resources: Resources) -> Result:
        s = self.settings
        return majority_of_n(resources.llm, task, account=resources.account, n=s.max_samples,
                             max_tokens=s.max_tokens, temperature=s.temperature, wave_size=s.wave_size)


@solver("beam", kinds=("math",), settings=BeamSettings)
class BeamSolver:
    """Step-level beam search over partial solutions, scored by the model's own probabilities (or a judge)."""

    def __init__(self, settings: BeamSettings):
        self.settings = settings

    def solve(self, task: MathTask, resources: Resources) -> Result:
        return beam_search(resources.llm, task, account=resources.account, width=self.settings.width,
                           cfg=_step_config(self.settings))


@solver("mcts", kinds=("math",), settings=MCTSSettings)
class MCTSSolver:
    """Monte-Carlo tree search over partial solutions, with whole-solution rollouts batched per iteration."""

    def __init__(self, settings: MCTSSettings):
        self.settings = settings

    def solve(self, task: MathTask, resources: Resources) -> Result:
        s = self.settings
        return mcts(resources.llm, task, account=resources.account, iterations=s.iterations,
                    want_answers=s.want_answers, c_puct=s.c_puct, rollouts=s.rollouts, widen=s.widen,
                    cfg=_step_config(s))


@solver("astar", kinds=("math",), settings=AStarSettings)
class AStarSolver:
    """A*-decoding: expand the partial solution with the lowest cost-so-far plus expected cost-to-go."""

    def __init__(self, settings: AStarSettings):
        self.settings = settings

    def solve(self, task: MathTask, resources: Resources) -> Result:
        s = self.settings
        return astar(resources.llm, task, account=resources.account, want_answers=s.want_answers,
                     expected_tokens=s.expected_tokens, children=s.children, sibling_penalty=s.sibling_penalty,
                     cfg=_step_config(s))
