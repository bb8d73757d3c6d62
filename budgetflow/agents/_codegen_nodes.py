"""The solver, tester and verifier nodes for code tasks (a function to complete)."""

from __future__ import annotations

from ..budget import BudgetExceeded
from ..search import CodeAttempt
from ..tasks import CodeTask
from ..verifiers import generate_tests, program_for
from ._context import AgentContext, add_units, anytime, spent_units, units_delta
from ..verifiers import Verdict
from ._state import AgentState, CandidateRecord, counted_verdict
from ._strategies import WaveStrategy, resolve_strategy


def code_task(state: AgentState) -> CodeTask:
    """The public view of the state's task: selection never sees hidden tests."""
    return CodeTask.model_validate(state.task).public()


class CodeSolver:
    """One wave of a search strategy on `<task>/solver` (its SpendTracker splits it into `.../generate` and
    `.../verify`). The strategy checks candidates on the run's tests (given or generated) to stop early."""

    name = "solver"

    def __init__(self, ctx: AgentContext, strategy: str | WaveStrategy = "sample"):
        self.ctx = ctx
        self.strategy = resolve_strategy(strategy)

    @anytime("solver")
    def __call__(self, state: AgentState) -> dict:
        task = code_task(state).model_copy(update={"visible_tests": tuple(state.tests)})
        account = self.ctx.agent_account(state, "solver")
        before = spent_units(account)
        attempt = CodeAttempt(self.ctx.llm, task, self.ctx.verifier, account, self.ctx.config.params)
        self.strategy(attempt, self.ctx.config.wave_size)
        first = len(state.candidates)
        wave = state.wave + 1
        new = [CandidateRecord(id=f"c{first + i}", text=c.text, score=c.score, passed_visible=c.passed_visible,
                               wave=wave, source=f"solver/wave-{wave}", meta=c.meta).model_dump(mode="json")
               for i, c in enumerate(attempt.candidates)]
        update = {"candidates": new, "wave": wave,
                  "wave_costs": state.wave_costs + [units_delta(spent_units(account), before)],
                  "notes": [f"solver: wave {wave} drew {len(new)} candidate(s)"]}
        if attempt.stopped:
            update.update(budget_hit=True, stop_reason="budget")
            update["notes"].append(f"solver: {attempt.stopped}")
        return update


class CodeTester:
    """Writes tests with the model (CodeT-style asserts) on `<task>/tester`. The graph skips it when the task comes
    with visible tests."""

    name = "tester"

    def __init__(self, ctx: AgentContext):
        self.ctx = ctx

    @anytime("tester")
    def __call__(self, state: AgentState) -> dict:
        cfg = self.ctx.config
        tests = generate_tests(self.ctx.llm, code_task(state), account=self.ctx.agent_account(state, "tester"),
                               n=cfg.tester_samples, max_tokens=cfg.tester_max_tokens)
        if not tests:
            return {"tests": [], "tests_source": "none",
                    "notes": ["tester: the model wrote no valid test; candidates are only checked to load"]}
        return {"tests": tests, "tests_source": "generated", "notes": [f"tester: wrote {len(tests)} test(s)"]}


def _verdict_from_strategy(cand: CandidateRecord, total: int, need_signature: bool) -> Verdict | None:
    """The strategy's own check, when it says enough: all passed, none passed, did not load — or a partial pass
    when no vote needs to know which tests passed."""
    if cand.meta.get("unverified") or "visible" not in cand.meta:
        return None
    passed, _, of = str(cand.meta["visible"]).partition("/")
    passed, of = int(passed), int(of or 0)
    if of != total:
        return None
    loaded = bool(cand.meta.get("loaded", True))
    if not loaded or passed in (0, total):
        return counted_verdict(passed if loaded else 0, total, loaded=loaded,
                               signature=[loaded and passed == total] * total, source="solver")
    if not need_signature:
        return counted_verdict(passed, total, source="solver")
    return None  # a partial pass: which tests passed matters for voting, so run it


class CodeVerifier:
    """Gives every new candidate a verdict on the run's tests. Where the solver's own check already says it all,
    that is reused; otherwise (unverified, or a partial pass whose per-test signature the vote needs) the candidate
    is run in the sandbox on `<task>/verifier`."""

    name = "verifier"

    def __init__(self, ctx: AgentContext):
        self.ctx = ctx

    @anytime("verifier")
    def __call__(self, state: AgentState) -> dict:
        task = code_task(state)
        account = self.ctx.agent_account(state, "verifier")
        before = spent_units(account)
        verdicts: dict[str, dict] = {}
        update: dict = {"notes": []}
        ran = 0
        votes = state.tests_source == "generated" or self.ctx.config.selection == "votes"
        for cand in state.candidates:
            if cand.id in state.verdicts:
                continue
            verdict = _verdict_from_strategy(cand, len(state.tests), need_signature=votes)
            if verdict is None:
                try:
                    report = self.ctx.verifier.run(program_for(task, cand.text), state.tests, account=account)
                except BudgetExceeded as err:
                    update.update(budget_hit=True, stop_reason="budget")
                    update["notes"].append(f"verifier: {err}")
                    break
                ran += 1
                verdict = counted_verdict(report.passed if report.loaded else 0, report.total, loaded=report.loaded,
                                          signature=list(report.signature))
            verdicts[cand.id] = verdict.model_dump(mode="json")
        update["verdicts"] = verdicts
        update["notes"].append(f"verifier: {len(verdicts)} verdict(s), {ran} sandbox run(s)")
        if state.wave_costs:
            cost = units_delta(spent_units(account), before)
            update["wave_costs"] = state.wave_costs[:-1] + [add_units(state.wave_costs[-1], cost)]
        return update
