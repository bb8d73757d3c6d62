"""One SWE trajectory: a multi-turn, tool-using agent on its own working copy, spending on its own account
(`<task>/solver/traj-i`). After each attempt the tests run; if they fail, the next attempt starts from the same
working copy with the failing output (serial scaling). Trajectories run side by side in threads (parallel scaling)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, Field

from ..budget import Account, BudgetExceeded
from ..llm import LLM, LLMError
from ..tasks import RepoTask
from ..verifiers import RepoTestRunner
from ._actions import PROTOCOL, parse_action
from ._config import AgentConfig
from ._tools import ToolBox, describe_report, report_ok
from ._workcopy import ToolError, WorkingCopy


class TrajectoryOutcome(BaseModel):
    index: int
    account: str
    patch: str = ""
    changed: dict[str, str | None] = Field(default_factory=dict)
    turns: int = 0
    attempts: int = 0
    actions: list[dict] = Field(default_factory=list)
    self_test: dict | None = None  # the last test run: passed / failed counts, ok
    stopped: str | None = None  # why it ended early (budget, model error)


def relevant_sources(files: Mapping[str, bytes], issue: str, max_chars: int) -> str:
    """The repository's non-test Python files most related to the issue (shared identifiers), up to max_chars."""
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]{2,}", issue))
    scored = []
    for path, data in files.items():
        name = path.rsplit("/", 1)[-1]
        if not path.endswith(".py") or name.startswith("test") or name == "conftest.py":
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        hits = sum(1 for w in words if w in text) + 3 * any(w in path for w in words)
        scored.append((-hits, len(text), path, text))
    out, left = [], max_chars
    for _, _, path, text in sorted(scored):
        block = f"--- {path} ---\n{text.rstrip()}\n"
        if len(block) > left:
            if not out and left > 200:
                out.append(block[:left] + "\n... (cut)\n")
            break
        out.append(block)
        left -= len(block)
    return "".join(out)


def first_prompt(task: RepoTask, files: Mapping[str, bytes], max_chars: int) -> str:
    listing = ", ".join(sorted(files)[:60])
    sources = relevant_sources(files, task.issue, max_chars)
    return (f"Fix this issue in a Python repository. You can read files, search, edit and run the tests; the real "
            f"repository is never changed.\n\nIssue:\n{task.issue.strip()}\n\nFiles: {listing}\n\n"
            f"The most relevant source files are below in full: no need to read or search them, find the bug and "
            f"edit it.\n\n{sources}\n{PROTOCOL}")


def retry_prompt(task: RepoTask, copy: WorkingCopy, test_output: str) -> str:
    diff = copy.diff() or "(no changes yet)"
    return (f"Fix this issue in a Python repository.\n\nIssue:\n{task.issue.strip()}\n\nYour changes so far:\n"
            f"```diff\n{diff[-1500:]}\n```\nThe tests still fail:\n{test_output}\n\nKeep fixing.\n{PROTOCOL}")


class Trajectory:
    def __init__(self, llm: LLM, runner: RepoTestRunner, task: RepoTask, files: Mapping[str, bytes], *,
                 account: Account, index: int, config: AgentConfig, tests: Sequence[str] = (),
                 test_files: Mapping[str, str] | None = None, given: bool = False):
        self.llm = llm
        self.task = task
        self.cfg = config
        self.account = account
        self.index = index
        self.copy = WorkingCopy(files)
        self.tools = ToolBox(self.copy, runner, task, tests=tests, test_files=test_files or {}, given=given,
                             account=account)
        max_len = getattr(llm, "max_model_len", None) or 4096
        self.max_len = max_len
        self.source_chars = max(600, int((max_len - config.turn_max_tokens - 700) * 2.5))

    def run(self) -> TrajectoryOutcome:
        out = TrajectoryOutcome(index=self.index, account=self.account.name)
        feedback = None
        try:
            for attempt in range(self.cfg.attempts):
                out.attempts = attempt + 1
                prompt = (first_prompt(self.task, self.copy.original, self.source_chars) if feedback is None
                          else retry_prompt(self.task, self.copy, feedback))
                out.turns += self._attempt([{"role": "user", "content": prompt}])
                report = self.tools.run_tests()  # the attempt ends with a test run (its feedback)
                out.self_test = {"passed": len(report.passed), "failed": len(report.failed), "ok": report_ok(report)}
                if report_ok(report):
                    break
                feedback = describe_report(report, 1200)
        except BudgetExceeded as err:
            out.stopped = f"budget: {err}"
        except LLMError as err:
            out.stopped = f"model error: {err}"
        out.patch = self.copy.diff()
        out.changed = self.copy.changed()
        out.actions = self.tools.log
        return out

    def _attempt(self, messages: list[dict]) -> int:
        turns = 0
        for _ in range(self.cfg.max_turns):
            self._fit(messages)
            gen = self.llm.generate(messages, account=self.account, max_tokens=self.cfg.turn_max_tokens,
                                    temperature=self.cfg.turn_temperature)
            turns += 1
            reply = gen.text
            try:
                observation, done = self.tools.execute(parse_action(reply))
            except ToolError as err:  # the reply named no action
                self.tools.log.append({"tool": "none", "ok": False, "error": str(err)[:120]})
                observation, done = f"error: {err}", False
            if done:
                break
            messages += [{"role": "assistant", "content": reply or "(empty)"},
                         {"role": "user", "content": observation + self._nudge(turns)}]
        return turns

    def _nudge(self, turns: int) -> str:
        """Small models read and search until their turns run out: say how many are left, and when the copy is
        still unchanged near the end, ask for the edit."""
        left = self.cfg.max_turns - turns
        if left <= 0:
            return ""
        if not self.copy.changed() and left <= 2:
            return (f"\n\n{left} turn(s) left and nothing is changed yet: reply with an ```edit``` (or ```write```) "
                    f"block that fixes the bug now.")
        return f"\n\n({left} turn(s) left.)"

    def _fit(self, messages: list[dict]) -> None:
        """Drop the oldest exchanges (keeping the task) until the prompt leaves room for a reply."""
        while len(messages) > 3:
            try:
                used = self.llm.count_tokens(messages)
            except Exception:  # noqa: BLE001 — cannot count: send as is; the engine refuses what does not fit
                return
            if used + self.cfg.turn_max_tokens <= self.max_len:
                return
            del messages[1:3]
