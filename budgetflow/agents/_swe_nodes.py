"""The solver, tester and verifier nodes for repository (SWE) tasks. Each spends on its own account, capped at the
share the routing gives it (see _routing: the tester and the verification are bounded, the solver gets the rest).

- solver: a wave of trajectories in parallel threads, each on `<task>/solver/traj-i` (capped); a candidate is a
  unified diff. The failing tests' output on the unchanged repository (run once) is the localisation evidence.
- tester: the model writes a reproduction test from the issue; only tests that fail on the unchanged repository
  are kept (a test that passes there reproduces nothing). The same run of the repository's own suite says which of
  its tests pass there: the regression tests every candidate must keep passing. Skipped when the tests are given.
- verifier: each candidate patch is applied to a copy of the repository and the tests run in the sandbox, the
  regression tests with them; a candidate that breaks one loses the selection.
"""

from __future__ import annotations

import ast
import re
from concurrent.futures import ThreadPoolExecutor

from ..budget import BudgetExceeded, amounts_to_units
from ..llm import LLMError
from ..tasks import RepoTask
from ..verifiers import RepoTestReport, Verdict
from ..workspace import repo_files
from ._context import AgentContext, add_units, anytime, spent_units, units_delta
from ._routing import capped_account, tester_cap, verifier_cap, wave_plan
from ._state import AgentState, CandidateRecord, counted_verdict
from ._tools import test_files_for
from ._trajectory import Trajectory, TrajectoryOutcome, relevant_sources

_PY_BLOCK = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)(?:```|$)", re.DOTALL)
FAILURE_CHARS = 3000  # of failing-test output kept as localisation evidence


def repo_task(state: AgentState) -> RepoTask:
    return RepoTask.model_validate(state.task)


def apply_changes(files: dict[str, bytes], changed: dict[str, str | None]) -> dict[str, bytes]:
    out = dict(files)
    for path, text in changed.items():
        if text is None:
            out.pop(path, None)
        else:
            out[path] = text.encode()
    return out


def failure_text(report: RepoTestReport, tests: list[str]) -> str:
    """The failing tests' tracebacks, trimmed: what localisation reads."""
    parts = [f"{t}:\n{report.details.get(t, '')[-1200:]}" for t in tests if t in report.failed]
    return "\n".join(parts)[:FAILURE_CHARS]


class RepoSolver:
    name = "solver"

    def __init__(self, ctx: AgentContext):
        self.ctx = ctx

    @anytime("solver")
    def __call__(self, state: AgentState) -> dict:
        cfg = self.ctx.config
        task = repo_task(state)
        files = repo_files(task.repo)
        account = self.ctx.agent_account(state, "solver")
        before = spent_units(account)
        update: dict = {"notes": []}
        given = state.tests_source == "given"
        failures = state.failures
        if not failures and given and task.fail_to_pass:  # once: where the failing tests break (localisation)
            try:
                report = self.ctx.runner.run(test_files_for(files, task, state.tests, {}, True), task,
                                             list(task.fail_to_pass), account=account)
                failures = update["failures"] = failure_text(report, list(task.fail_to_pass))
            except BudgetExceeded as err:  # no evidence, still a wave: localisation falls back to the issue
                update["notes"].append(f"solver: cannot afford the failing tests' run for localisation ({err})")
        first = len(state.candidates)
        wave = state.wave + 1
        n, cap, why = wave_plan(self.ctx, state)
        accounts = [capped_account(account, f"{account.name}/traj-{first + i}", cap) for i in range(n)]
        runner = self.ctx.runner  # made here, not racing in the threads

        def one(i: int) -> TrajectoryOutcome:
            try:
                return Trajectory(self.ctx.llm, runner, task, files, account=accounts[i], index=first + i,
                                  config=cfg, tests=state.tests, test_files=state.test_files, given=given,
                                  failures=failures).run()
            except Exception as err:  # noqa: BLE001 — one broken trajectory must not sink the others
                return TrajectoryOutcome(index=first + i, account=accounts[i].name, stop="error",
                                         stopped=f"error: {type(err).__name__}: {err}")

        with ThreadPoolExecutor(max_workers=min(cfg.parallel, n)) as pool:
            outcomes = list(pool.map(one, range(n)))
        new = []
        for o in outcomes:
            o.cap = {k: v for k, v in cap.model_dump().items() if v is not None}
            meta = o.model_dump(mode="json", exclude={"patch", "index"})
            ok = bool(o.self_test and o.self_test["ok"])
            new.append(CandidateRecord(id=f"c{o.index}", text=o.patch, wave=wave, source=f"traj-{o.index}",
                                       passed_visible=ok and given, score=1.0 if ok else 0.0,
                                       meta=meta).model_dump(mode="json"))
            update["notes"].append(
                f"solver: traj-{o.index}: {o.turns} turn(s), {o.attempts} attempt(s), "
                f"{sum(a['ok'] for a in o.actions)}/{len(o.actions)} tool call(s) ok, "
                f"{'a' if o.patch else 'no'} patch, stopped: {o.stop}" + (f" ({o.stopped[:120]})" if o.stopped else ""))
        starved = sum(o.stop == "budget" and not o.patch for o in outcomes)
        waves = [*state.metrics.get("waves", []), {"wave": wave, "trajectories": n, "starved": starved,
                                                   "cap": outcomes[0].cap if outcomes else {}, "why": why}]
        update.update(candidates=new, wave=wave, metrics={"waves": waves},
                      wave_costs=state.wave_costs + [units_delta(spent_units(account), before)])
        update["notes"].insert(0, f"solver: wave {wave}: {n} trajectories, each capped at {cap.describe()} ({why})")
        if all(o.stop == "budget" and o.turns == 0 for o in outcomes):  # not one turn affordable: the money is out
            update.update(budget_hit=True, stop_reason="budget")
        return update


def test_ids(path: str, source: str) -> list[str]:
    """pytest node ids of the top-level test functions (and test methods of Test classes) in a file."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    ids = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            ids.append(f"{path}::{node.name}")
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            ids += [f"{path}::{node.name}::{m.name}" for m in node.body
                    if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and m.name.startswith("test")]
    return ids


def reproduction_prompt(task: RepoTask, files: dict[str, bytes], max_chars: int) -> list[dict]:
    code, _ = relevant_sources(files, task.issue, max_chars)
    return [{"role": "user", "content": (
        f"A Python repository has this issue:\n{task.issue.strip()}\n\n"
        f"Python files: {', '.join(sorted(p for p in files if p.endswith('.py'))[:60])}\n\n"
        f"The code the issue is most likely about:\n{code}\n"
        "Write a pytest test file that reproduces the issue: its tests must fail on the code above and pass once "
        "the issue is fixed. Import what you test from the repository's modules. Reply with one ```python block.")}]


class RepoTester:
    name = "tester"

    def __init__(self, ctx: AgentContext):
        self.ctx = ctx

    @anytime("tester")
    def __call__(self, state: AgentState) -> dict:
        cfg = self.ctx.config
        task = repo_task(state)
        files = repo_files(task.repo)
        cap = tester_cap(self.ctx, state)
        account = capped_account(self.ctx.task_account(state), f"{state.account}/tester", cap)
        max_len = int(getattr(self.ctx.llm, "max_model_len", None) or 4096)
        chars = max(600, min(8000, int((max_len - cfg.tester_max_tokens - 500) * 2.5)))
        prompt = reproduction_prompt(task, files, chars)
        metrics = {"cap": {k: v for k, v in cap.model_dump().items() if v is not None}}
        try:
            used = self.ctx.llm.count_tokens(prompt)
            metrics["prompt_tokens"] = used
            while used + cfg.tester_max_tokens > max_len and chars > 600:  # never send what cannot fit
                chars //= 2
                prompt = reproduction_prompt(task, files, chars)
                used = metrics["prompt_tokens"] = self.ctx.llm.count_tokens(prompt)
            if used + min(cfg.tester_max_tokens, 48) > max_len:
                metrics["context"] = f"refused: the prompt has {used} tokens, the context is {max_len}"
                return self._none(f"tester: {metrics['context']}", metrics)
            gen = self.ctx.llm.generate(prompt, account=account, n=cfg.tester_samples,
                                        max_tokens=min(cfg.tester_max_tokens, max_len - used), temperature=0.7)
        except BudgetExceeded as err:  # its own share refused it: the solver still has its money
            metrics["stopped"] = "budget"
            return self._none(f"tester: its share cannot afford a call ({err})", metrics)
        except LLMError as err:
            metrics["stopped"] = "model error"
            return self._none(f"tester: model error ({err})", metrics)
        written: dict[str, str] = {}
        ids: list[str] = []
        for i, completion in enumerate(gen.completions):
            m = _PY_BLOCK.search(completion.text)
            source = (m.group(1) if m else completion.text).strip() + "\n"
            path = f"test_bf_repro_{i}.py"
            found = test_ids(path, source)
            if found:
                written[path] = source
                ids += found
        try:  # the whole suite and the new tests in one run: the suite's passing tests are the regression set
            report = self.ctx.runner.run({**files, **{p: s.encode() for p, s in written.items()}}, task, None,
                                         account=account)
        except BudgetExceeded as err:
            metrics["stopped"] = "budget"
            return self._none(f"tester: its share cannot afford a test run ({err})", metrics)
        regression = sorted(t for t in report.passed if not t.startswith("test_bf_repro_"))
        broken = {m.split("::")[0] for m in re.findall(r"collection error in (\S+)", report.errors)}
        keep = [t for t in ids if t in report.failed and t.split("::")[0] not in broken
                and not report.details.get(t, "").startswith("did not run")]
        files_kept = {p: s for p, s in written.items() if any(t.startswith(p + "::") for t in keep)}
        note = (f"tester: {len(ids)} test(s) written, {len(keep)} fail on the unchanged repository "
                f"(kept as reproduction tests); {len(regression)} of the repository's tests pass there")
        metrics.update(written=len(ids), kept=len(keep))
        out = {"regression_tests": regression, "metrics": {"tester": metrics}}
        if not keep:
            return {**out, "tests": [], "tests_source": "none", "test_files": {},
                    "notes": [note, "tester: no reproduction test; candidates are checked on the repo's suite"]}
        return {**out, "tests": keep, "tests_source": "generated", "test_files": files_kept, "notes": [note],
                "failures": failure_text(report, keep)}

    @staticmethod
    def _none(note: str, metrics: dict) -> dict:
        return {"tests": [], "tests_source": "none", "test_files": {}, "notes": [note],
                "metrics": {"tester": metrics}}


class RepoVerifier:
    name = "verifier"

    def __init__(self, ctx: AgentContext):
        self.ctx = ctx

    @anytime("verifier")
    def __call__(self, state: AgentState) -> dict:
        task = repo_task(state)
        files = repo_files(task.repo)
        runner = self.ctx.runner
        one_run = _units(runner.worst_case())
        parent = self.ctx.agent_account(state, "verifier")
        account = capped_account(parent, f"{parent.name}/wave-{state.wave}", verifier_cap(self.ctx, state, one_run))
        before = spent_units(account)
        given = state.tests_source == "given"
        update: dict = {"notes": []}
        regression = list(state.regression_tests) or (list(task.pass_to_pass) if given else [])
        verdicts: dict[str, dict] = {}
        by_patch: dict[str, Verdict] = {}
        ran = 0
        try:
            if not regression and not given:  # once: which of the repository's tests pass before any change
                regression = sorted(runner.run(files, task, None, account=account).passed)
                update["regression_tests"] = regression
                ran += 1
            for cand in state.candidates:
                if cand.id in state.verdicts:
                    continue
                if not cand.text.strip():
                    verdict = counted_verdict(0, len(state.tests), loaded=False, signature=[False] * len(state.tests))
                elif cand.text in by_patch:
                    verdict = by_patch[cand.text]
                else:
                    work = test_files_for(apply_changes(files, cand.meta.get("changed", {})), task, state.tests,
                                          state.test_files, given)
                    wanted = list(dict.fromkeys([*state.tests, *regression]))
                    report = runner.run(work, task, wanted or None, account=account)
                    ran += 1
                    verdict = self._verdict(state.tests, regression, report)
                    by_patch[cand.text] = verdict
                verdicts[cand.id] = verdict.model_dump(mode="json")
        except BudgetExceeded as err:  # verification's share is spent: the rest stay unverified (ranked last)
            update["notes"].append(f"verifier: its share is spent, {len(state.candidates) - len(verdicts)} "
                                   f"candidate(s) left unverified ({err})")
        update["verdicts"] = verdicts
        broke = sum(bool(v["data"].get("broken")) for v in verdicts.values())
        update["notes"].append(f"verifier: {len(verdicts)} verdict(s), {ran} sandbox run(s), {len(regression)} "
                               f"regression test(s), {broke} candidate(s) break some")
        if state.wave_costs:
            cost = units_delta(spent_units(account), before)
            update["wave_costs"] = state.wave_costs[:-1] + [add_units(state.wave_costs[-1], cost)]
        return update

    @staticmethod
    def _verdict(tests: list[str], regression: list[str], report: RepoTestReport) -> Verdict:
        ids = list(tests) or sorted(report.passed | report.failed)
        signature = [t in report.passed for t in ids]
        verdict = counted_verdict(sum(signature), len(ids), loaded=bool(ids), signature=signature)
        broken = sorted(t for t in regression if t not in report.passed)
        return verdict.model_copy(update={"data": {**verdict.data, "broken": broken[:50],
                                                   "regressions": len(broken)}})


def _units(amounts: dict[str, float]) -> dict[str, int]:
    return amounts_to_units({k: v for k, v in amounts.items() if v})
