"""The selector node: rank candidates by tests passed or by votes on generated tests, optionally end with a
selection turn (the model is shown the top candidates and picks one, as in CodeMonkeys), and say why the run ended.

It never fails for want of money: a selection turn the budget refuses, or an answer that names no candidate, falls
back to the test ranking (and the notes say so)."""

from __future__ import annotations

import re

from ..budget import BudgetExceeded
from ..llm import LLMError
from ..verifiers import TestOutcome, TestReport, agreement_ranking, program_for
from ._context import AgentContext
from ._state import AgentState, CandidateRecord

_WORDS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "one": 1, "two": 2, "three": 3,
          "four": 4, "five": 5}


def parse_choice(text: str, k: int) -> int | None:
    """The candidate number (1..k) an answer names, or None. Tolerant: 'Candidate 2', '#2', '2.', 'the second one',
    'Answer: 3'; a number outside 1..k is not a choice."""
    low = text.lower()
    for pattern in (r"candidate\s*(?:number\s*)?#?\s*(\d+)", r"(?:answer|choice|pick|choose|select)\w*\s*(?:is)?\s*:?\s*#?\s*(\d+)",
                    r"#\s*(\d+)", r"(?<![\w.])(\d+)(?!\w|\.\d)"):
        for m in re.finditer(pattern, low):
            n = int(m.group(1))
            if 1 <= n <= k:
                return n
    for word, n in _WORDS.items():
        if re.search(rf"\b{word}\b", low) and n <= k:
            return n
    return None


def rank(state: AgentState, how: str) -> list[tuple[str, float]]:
    """(candidate id, score), best first, ties in the order produced. `votes`: CodeT agreement on the generated
    tests (group size x tests passed); `tests`: fraction of tests passed. Unverified candidates come last, and after
    every other candidate those that break a regression test (a pass-to-pass test they could see)."""
    ranking = _rank(state, how)
    broken = [r for r in ranking if _breaks(state, r[0])]
    broken.sort(key=lambda r: state.verdicts[r[0]].data.get("regressions", 1))  # the fewest broken first
    return [r for r in ranking if not _breaks(state, r[0])] + broken


def _breaks(state: AgentState, cid: str) -> bool:
    verdict = state.verdicts.get(cid)
    return verdict is not None and bool(verdict.data.get("broken"))


def _rank(state: AgentState, how: str) -> list[tuple[str, float]]:
    cands = [c for c in state.candidates if not _empty_patch(state, c)]
    if how == "votes":
        reports = []
        for c in cands:
            v = state.verdicts.get(c.id)
            if v is None:
                reports.append(TestReport(outcomes=[], loaded=False))
            else:
                outcomes = [TestOutcome(test=str(i), passed=p) for i, p in enumerate(v.signature)]
                reports.append(TestReport(outcomes=outcomes, loaded=v.loaded))
        return [(cands[r.index].id, r.score) for r in agreement_ranking(reports)]
    scored = []
    for i, c in enumerate(cands):
        v = state.verdicts.get(c.id)
        scored.append((c.id, -1.0 if v is None else (v.fraction if v.loaded else 0.0), i))
    return [(cid, s) for cid, s, _ in sorted(scored, key=lambda t: (-t[1], t[2]))]


def _empty_patch(state: AgentState, cand: CandidateRecord) -> bool:
    return state.kind == "repo" and not cand.text.strip()


def _render(state: AgentState, cand: CandidateRecord) -> str:
    if state.kind == "code":
        from ._codegen_nodes import code_task

        return "```python\n" + program_for(code_task(state), cand.text).strip() + "\n```"
    return "```diff\n" + cand.text.strip() + "\n```"


def _problem(state: AgentState) -> str:
    if state.kind == "code":
        return "Complete this Python function:\n```python\n" + str(state.task["prompt"]).strip() + "\n```"
    return "Resolve this issue in the repository:\n" + str(state.task["issue"]).strip()


def selection_prompt(state: AgentState, shown: list[CandidateRecord]) -> list[dict]:
    parts = [_problem(state), ""]
    for i, cand in enumerate(shown, 1):
        parts += [f"Candidate {i}:", _render(state, cand), ""]
    parts.append(f"Which candidate is correct? Answer with the number of the best candidate (1 to {len(shown)}) "
                 f"and nothing else.")
    return [{"role": "user", "content": "\n".join(parts)}]


def stop_reason(state: AgentState, max_waves: int) -> str:
    """Why the run reached the selector: the routing sends it here when solved, at the wave cap, or when the budget
    cannot afford another wave (or refused a call)."""
    if state.stop_reason:
        return state.stop_reason
    if state.solved():
        return "solved"
    if state.wave >= max_waves:
        return "exhausted"
    return "budget"


def spend_by_account(ctx: AgentContext, task_account: str) -> dict[str, dict]:
    """Committed spend of the task account and every account under it, from the ledger."""
    out = {}
    for bal in ctx.ledger.accounts():
        if bal.name == task_account or bal.name.startswith(task_account + "/"):
            out[bal.name] = bal.committed.model_dump(mode="json")
    return out


class Selector:
    """Chooses the answer; spends (only for a selection turn) on `<task>/selector`."""

    name = "selector"

    def __init__(self, ctx: AgentContext):
        self.ctx = ctx

    def __call__(self, state: AgentState) -> dict:
        cfg = self.ctx.config
        how = cfg.selection
        if how in ("auto", "llm"):
            how_rank = "votes" if state.tests_source == "generated" else "tests"
        else:
            how_rank = how
        ranking = rank(state, how_rank)
        self.metrics: dict = {}
        notes: list[str] = []
        selected, method = (ranking[0][0], how_rank) if ranking else (None, "none")
        shown = self._for_turn(state, ranking, how)
        if shown:
            choice, why = self._turn(state, shown)
            if choice is not None:
                selected, method = shown[choice].id, "llm"
                notes.append(f"selector: the model picked candidate {shown[choice].id} of "
                             f"{', '.join(c.id for c in shown)}")
            else:
                method = f"{how_rank} (llm-fallback)"
                notes.append(f"selector: selection turn gave no choice ({why}); kept the {how_rank} ranking")
        reason = stop_reason(state, cfg.max_waves)
        if reason == "budget" and not state.budget_hit and not state.stop_reason:
            notes.append("selector: stopped sampling: the remaining budget cannot afford another wave")
        if selected is None:
            notes.append("selector: no candidate to select")
        if selected is not None and _breaks(state, selected):
            notes.append(f"selector: every candidate breaks a regression test; {selected} breaks the fewest shown")
        return {"selected": selected, "selection": method, "stop_reason": reason,
                "spend": spend_by_account(self.ctx, state.account), "notes": notes,
                "metrics": {"selector": self.metrics} if self.metrics else {}}

    def _for_turn(self, state: AgentState, ranking: list[tuple[str, float]], how: str) -> list[CandidateRecord]:
        """Distinct candidates to show the model: the top k (mode llm), or those tied at the top (mode auto)."""
        if how not in ("auto", "llm") or len(ranking) < 2:
            return []
        top = ranking[0][1]
        pool = ranking if how == "llm" else [r for r in ranking if r[1] == top]
        if not _breaks(state, ranking[0][0]):  # never offer the model a candidate that breaks a regression test
            pool = [r for r in pool if not _breaks(state, r[0])]
        shown: list[CandidateRecord] = []
        seen: set[str] = set()
        for cid, _ in pool:
            cand = state.candidate(cid)
            key = _render(state, cand)  # what the model would see: equal programs are one choice
            if key in seen:
                continue
            seen.add(key)
            shown.append(cand)
            if len(shown) == self.ctx.config.selection_top_k:
                break
        return shown if len(shown) >= 2 else []

    def _turn(self, state: AgentState, shown: list[CandidateRecord]) -> tuple[int | None, str]:
        want = self.ctx.config.selection_max_tokens
        max_len = int(getattr(self.ctx.llm, "max_model_len", None) or 0)
        prompt = selection_prompt(state, shown)
        try:
            if max_len:  # never send what cannot fit: show fewer candidates, else refuse
                used = self.ctx.llm.count_tokens(prompt)
                while used + want > max_len and len(shown) > 2:
                    shown = shown[:-1]
                    prompt = selection_prompt(state, shown)
                    used = self.ctx.llm.count_tokens(prompt)
                self.metrics.update(prompt_tokens=used, shown=len(shown))
                if used + want > max_len:
                    self.metrics["context"] = f"refused: the prompt has {used} tokens, the context is {max_len}"
                    return None, f"context: {self.metrics['context']}"
            gen = self.ctx.llm.generate(prompt, account=self.ctx.agent_account(state, "selector"),
                                        max_tokens=want, temperature=0.0)
        except BudgetExceeded as err:
            return None, f"budget: {err}"
        except LLMError as err:
            return None, f"model error: {err}"
        n = parse_choice(gen.text, len(shown))
        if n is None:
            return None, f"unparseable answer {gen.text.strip()[:80]!r}"
        return n - 1, ""
