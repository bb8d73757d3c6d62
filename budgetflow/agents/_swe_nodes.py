"""The solver, tester and verifier nodes for repository (SWE) tasks.

- solver: a wave of trajectories in parallel threads, each on `<task>/solver/traj-i`; a candidate is a unified diff.
- tester: the model writes a reproduction test from the issue; only tests that fail on the unchanged repository
  are kept (a test that passes there reproduces nothing). Skipped when the task's tests may be shown.
- verifier: each candidate patch is applied to a copy of the repository and the tests run in the sandbox.
"""

from __future__ import annotations

import ast
import re
from concurrent.futures import ThreadPoolExecutor

from ..budget import BudgetExceeded
from ..tasks import RepoTask
from ..workspace import repo_files
from ._context import AgentContext, add_units, anytime, spent_units, units_delta
from ..verifiers import Verdict
from ._state import AgentState, CandidateRecord, counted_verdict
from ._tools import test_files_for
from ._trajectory import Trajectory, TrajectoryOutcome, relevant_sources

_PY_BLOCK = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)(?:```|$)", re.DOTALL)


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
        first = len(state.candidates)
        wave = state.wave + 1
        accounts = [account.child(f"{account.name}/traj-{first + i}") for i in range(cfg.wave_size)]
        given = state.tests_source == "given"
        runner = self.ctx.runner  # made here, not racing in the threads

        def one(i: int) -> TrajectoryOutcome:
            try:
                return Trajectory(self.ctx.llm, runner, task, files, account=accounts[i],
                                  index=first + i, config=cfg, tests=state.tests, test_files=state.test_files,
                                  given=given).run()
            except Exception as err:  # noqa: BLE001 — one broken trajectory must not sink the others
                return TrajectoryOutcome(index=first + i, account=accounts[i].name,
                                         stopped=f"error: {type(err).__name__}: {err}")

        with ThreadPoolExecutor(max_workers=min(cfg.parallel, cfg.wave_size)) as pool:
            outcomes = list(pool.map(one, range(cfg.wave_size)))
        new, notes = [], []
        for o in outcomes:
            meta = o.model_dump(mode="json", exclude={"patch", "index"})
            ok = bool(o.self_test and o.self_test["ok"])
            new.append(CandidateRecord(id=f"c{o.index}", text=o.patch, wave=wave, source=f"traj-{o.index}",
                                       passed_visible=ok and given, score=1.0 if ok else 0.0,
                                       meta=meta).model_dump(mode="json"))
            notes.append(f"solver: traj-{o.index}: {o.turns} turn(s), {o.attempts} attempt(s), "
                         f"{sum(a['ok'] for a in o.actions)}/{len(o.actions)} tool call(s) ok, "
                         f"{'a' if o.patch else 'no'} patch" + (f", stopped ({o.stopped[:120]})" if o.stopped else ""))
        update = {"candidates": new, "wave": wave, "notes": notes,
                  "wave_costs": state.wave_costs + [units_delta(spent_units(account), before)]}
        if any(o.stopped and o.stopped.startswith("budget") for o in outcomes):
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
    return [{"role": "user", "content": (
        f"A Python repository has this issue:\n{task.issue.strip()}\n\nFiles: {', '.join(sorted(files)[:60])}\n\n"
        f"{relevant_sources(files, task.issue, max_chars)}\n"
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
        account = self.ctx.agent_account(state, "tester")
        max_len = getattr(self.ctx.llm, "max_model_len", None) or 4096
        chars = max(600, int((max_len - cfg.tester_max_tokens - 500) * 2.5))
        gen = self.ctx.llm.generate(reproduction_prompt(task, files, chars), account=account,
                                    n=cfg.tester_samples, max_tokens=cfg.tester_max_tokens, temperature=0.7)
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
        if not ids:
            return {"tests": [], "tests_source": "none", "test_files": {},
                    "notes": ["tester: the model wrote no runnable test; candidates are checked on the repo's suite"]}
        report = self.ctx.runner.run({**files, **{p: s.encode() for p, s in written.items()}}, task, ids,
                                          account=account)
        broken = {m.split("::")[0] for m in re.findall(r"collection error in (\S+)", report.errors)}
        keep = [t for t in ids if t in report.failed and t.split("::")[0] not in broken
                and not report.details.get(t, "").startswith("did not run")]
        files_kept = {p: s for p, s in written.items() if any(t.startswith(p + "::") for t in keep)}
        note = (f"tester: {len(ids)} test(s) written, {len(keep)} fail on the unchanged repository "
                f"(kept as reproduction tests)")
        if not keep:
            return {"tests": [], "tests_source": "none", "test_files": {},
                    "notes": [note, "tester: no reproduction test; candidates are checked on the repo's suite"]}
        return {"tests": keep, "tests_source": "generated", "test_files": files_kept, "notes": [note]}


class RepoVerifier:
    name = "verifier"

    def __init__(self, ctx: AgentContext):
        self.ctx = ctx

    @anytime("verifier")
    def __call__(self, state: AgentState) -> dict:
        task = repo_task(state)
        files = repo_files(task.repo)
        account = self.ctx.agent_account(state, "verifier")
        before = spent_units(account)
        given = state.tests_source == "given"
        verdicts: dict[str, dict] = {}
        by_patch: dict[str, Verdict] = {}
        update: dict = {"notes": []}
        ran = 0
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
                try:
                    report = self.ctx.runner.run(work, task, state.tests or None, account=account)
                except BudgetExceeded as err:
                    update.update(budget_hit=True, stop_reason="budget")
                    update["notes"].append(f"verifier: {err}")
                    break
                ran += 1
                ids = list(state.tests) or sorted(report.passed | report.failed)
                signature = [t in report.passed for t in ids]
                verdict = counted_verdict(sum(signature), len(ids), loaded=bool(ids), signature=signature)
                by_patch[cand.text] = verdict
            verdicts[cand.id] = verdict.model_dump(mode="json")
        update["verdicts"] = verdicts
        update["notes"].append(f"verifier: {len(verdicts)} verdict(s), {ran} sandbox run(s)")
        if state.wave_costs:
            cost = units_delta(spent_units(account), before)
            update["wave_costs"] = state.wave_costs[:-1] + [add_units(state.wave_costs[-1], cost)]
        return update
