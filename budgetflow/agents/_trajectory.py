"""One SWE trajectory: a multi-turn, tool-using agent on its own working copy, spending on its own capped account
(`<task>/solver/traj-i`, its share decided by the routing). After each attempt the tests run; if they fail, the next
attempt starts from the same working copy with the failing output (serial scaling). Trajectories run side by side in
threads (parallel scaling).

What it is shown is localised (`budgetflow.workspace.localize`): the functions the issue and the failing tests point
at, with line numbers and an outline of their files — not whole files. Every prompt is measured before it is sent,
and a prompt that would not leave room for a reply in the model's context is shrunk (older exchanges dropped, less
code shown, a shorter reply) or refused with a note — never sent. Why it stopped, its prompt sizes and what the
context forced are kept in its outcome (and so in the run's results)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from pydantic import BaseModel, Field

from ..budget import Account, BudgetExceeded
from ..llm import LLM, LLMError
from ..tasks import RepoTask
from ..verifiers import RepoTestRunner
from ..workspace import is_test_file, localize, render_locations
from ._actions import PROTOCOL, parse_action
from ._config import AgentConfig
from ._tools import ToolBox, describe_report, report_ok
from ._workcopy import ToolError, WorkingCopy

MAX_SHOWN_CHARS = 8000  # code shown up front (~2.5k tokens): prefill is paid on every turn, on a CPU dearly
MIN_REPLY_TOKENS = 48  # a reply shorter than this cannot hold an edit: refuse rather than send
STOPS = ("tests pass", "done", "turns", "budget", "context", "model error", "error")


class ContextFull(Exception):
    """The prompt cannot be made to fit the model's context with room for a reply (nothing was sent)."""


class TrajectoryOutcome(BaseModel):
    index: int
    account: str
    patch: str = ""
    changed: dict[str, str | None] = Field(default_factory=dict)
    turns: int = 0
    attempts: int = 0
    actions: list[dict] = Field(default_factory=list)
    self_test: dict | None = None  # the last test run: passed / failed counts, ok
    stopped: str | None = None  # why it ended early (budget, context, model error), with the error's message
    stop: str = ""  # why it ended, one of STOPS
    prompt_tokens: list[int] = Field(default_factory=list)  # of every prompt sent, in order
    context: list[str] = Field(default_factory=list)  # what the context forced: shrinks and refusals
    located: list[str] = Field(default_factory=list)  # the functions shown first, best first
    cap: dict = Field(default_factory=dict)  # its account's cap (the share the routing gave it)


def relevant_sources(files: Mapping[str, bytes], issue: str, max_chars: int, *, failures: str = "",
                     tests: Sequence[str] = (), top: int = 3) -> tuple[str, list[str]]:
    """(the localised code to show, the functions it shows) for an issue; falls back to the source files sharing
    the most words with the issue when no function stands out."""
    locations = localize(files, issue, failures=failures, tests=tests, top=top)
    if locations:
        return render_locations(files, locations, max_chars), [f"{loc.path}::{loc.name}" for loc in locations]
    words = {w for w in issue.replace("`", " ").split() if len(w) > 3}
    ranked = sorted((p for p in files if p.endswith(".py") and not is_test_file(p)),
                    key=lambda p: -sum(w in files[p].decode("utf-8", "replace") for w in words))
    out, left = [], max_chars
    for path in ranked[:2]:
        block = f"--- {path} ---\n{files[path].decode('utf-8', 'replace')}\n"
        out.append(block[:left])
        left -= len(out[-1])
        if left <= 200:
            break
    return "".join(out), []


def first_prompt(task: RepoTask, files: Mapping[str, bytes], code: str) -> str:
    listing = ", ".join(sorted(p for p in files if p.endswith(".py"))[:60])
    return (f"Fix this issue in a Python repository. You can read files, search, edit and run the tests; the real "
            f"repository is never changed.\n\nIssue:\n{task.issue.strip()}\n\nPython files: {listing}\n\n"
            f"Where the bug most likely is (found from the issue and the failing tests), with line numbers:\n\n"
            f"{code}\nRead more only if you need to; find the bug and edit it.\n\n{PROTOCOL}")


def retry_prompt(task: RepoTask, copy: WorkingCopy, test_output: str, code: str) -> str:
    diff = copy.diff() or "(no changes yet)"
    return (f"Fix this issue in a Python repository.\n\nIssue:\n{task.issue.strip()}\n\nYour changes so far:\n"
            f"```diff\n{diff[-1500:]}\n```\nThe tests still fail:\n{test_output}\n\nThe code now:\n{code}\n"
            f"Keep fixing.\n{PROTOCOL}")


class Trajectory:
    def __init__(self, llm: LLM, runner: RepoTestRunner, task: RepoTask, files: Mapping[str, bytes], *,
                 account: Account, index: int, config: AgentConfig, tests: Sequence[str] = (),
                 test_files: Mapping[str, str] | None = None, given: bool = False, failures: str = ""):
        self.llm = llm
        self.task = task
        self.cfg = config
        self.account = account
        self.index = index
        self.copy = WorkingCopy(files)
        self.tools = ToolBox(self.copy, runner, task, tests=tests, test_files=test_files or {}, given=given,
                             account=account)
        self.failures = failures
        self.tests = list(task.fail_to_pass if given else tests)
        self.max_len = int(getattr(llm, "max_model_len", None) or 4096)
        self.source_chars = max(600, min(MAX_SHOWN_CHARS, int((self.max_len - config.turn_max_tokens - 700) * 2.5)))
        self.out = TrajectoryOutcome(index=index, account=account.name)

    def run(self) -> TrajectoryOutcome:
        out = self.out
        feedback = None
        try:
            out.stop = "turns"
            for attempt in range(self.cfg.attempts):
                out.attempts = attempt + 1
                build = self._first if feedback is None else (lambda chars, fb=feedback: self._retry(fb, chars))
                done = self._attempt(build)
                report = self.tools.run_tests()  # the attempt ends with a test run (its feedback)
                out.self_test = {"passed": len(report.passed), "failed": len(report.failed), "ok": report_ok(report)}
                if report_ok(report):
                    out.stop = "tests pass"
                    break
                if done:
                    out.stop = "done"
                feedback = describe_report(report, 1200)
        except BudgetExceeded as err:
            out.stopped, out.stop = f"budget: {err}", "budget"
        except ContextFull as err:
            out.stopped, out.stop = f"context: {err}", "context"
        except LLMError as err:
            out.stopped, out.stop = f"model error: {err}", "model error"
        out.patch = self.copy.diff()
        out.changed = self.copy.changed()
        out.actions = self.tools.log
        return out

    def _code(self, files: Mapping[str, bytes], chars: int) -> str:
        code, located = relevant_sources(files, self.task.issue, chars, failures=self.failures, tests=self.tests,
                                         top=self.cfg.localize_top)
        if not self.out.located:
            self.out.located = located
        return code

    def _first(self, chars: int) -> str:
        return first_prompt(self.task, self.copy.original, self._code(self.copy.original, chars))

    def _retry(self, feedback: str, chars: int) -> str:
        return retry_prompt(self.task, self.copy, feedback, self._code(self.copy.files, chars // 2))

    def _attempt(self, build: Callable[[int], str]) -> bool:
        """One attempt of up to max_turns turns; True when the model said it is done."""
        chars = self.source_chars
        messages = [{"role": "user", "content": build(chars)}]
        for turn in range(1, self.cfg.max_turns + 1):
            max_tokens = self._fit(messages, build)
            gen = self.llm.generate(messages, account=self.account, max_tokens=max_tokens,
                                    temperature=self.cfg.turn_temperature)
            self.out.turns += 1
            reply = gen.text
            try:
                observation, done = self.tools.execute(parse_action(reply))
            except ToolError as err:  # the reply named no action
                self.tools.log.append({"tool": "none", "ok": False, "error": str(err)[:120]})
                observation, done = f"error: {err}", False
            if done:
                return True
            messages += [{"role": "assistant", "content": reply or "(empty)"},
                         {"role": "user", "content": observation + self._nudge(self.cfg.max_turns - turn)}]
        return False

    def _nudge(self, left: int) -> str:
        """Small models read and search until their turns run out: say how many are left, and when the copy is
        still unchanged near the end, ask for the edit."""
        if left <= 0:
            return ""
        if not self.copy.changed() and left <= 2:
            return (f"\n\n{left} turn(s) left and nothing is changed yet: reply with an ```edit``` (or ```write```) "
                    f"block that fixes the bug now.")
        return f"\n\n({left} turn(s) left.)"

    def _fit(self, messages: list[dict], build: Callable[[int], str]) -> int:
        """Make the prompt fit the context with room for a reply; returns the reply's max_tokens. Drops the oldest
        exchanges (keeping the task), then shows less code, then shortens the reply; raises ContextFull (nothing
        sent) when even that cannot fit."""
        want = self.cfg.turn_max_tokens
        used = self._count(messages)
        turn = self.out.turns + 1
        dropped, chars = 0, self.source_chars
        while used + want > self.max_len and len(messages) > 3:
            del messages[1:3]
            dropped += 1
            used = self._count(messages)
        while used + want > self.max_len and chars > 600:
            chars //= 2
            messages[0] = {"role": "user", "content": build(chars)}
            used = self._count(messages)
        if dropped or chars < self.source_chars:
            self.out.context.append(f"turn {turn}: shrunk to {used} tokens ({dropped} old exchange(s) dropped, "
                                    f"{chars} characters of code shown)")
        room = self.max_len - used
        if room < min(want, MIN_REPLY_TOKENS):
            self.out.context.append(f"turn {turn}: refused: the prompt has {used} tokens, the context is "
                                    f"{self.max_len}: no room for a reply")
            raise ContextFull(f"the prompt has {used} tokens; the model's context is {self.max_len}")
        if room < want:
            self.out.context.append(f"turn {turn}: reply cut to {room} tokens by the context")
        self.out.prompt_tokens.append(used)
        return min(want, room)

    def _count(self, messages: list[dict]) -> int:
        try:
            return int(self.llm.count_tokens(messages))
        except LLMError:
            raise
        except Exception:  # noqa: BLE001 — cannot count: bound it by its UTF-8 bytes (a token is at least a byte)
            return sum(len(str(m.get("content", "")).encode()) + 8 for m in messages)
