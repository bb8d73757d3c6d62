"""Majority vote over final answers (math)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from pydantic import BaseModel

from ..budget import Account
from ..tasks import normalize_number
from ._protocol import Verdict, verifier

_ANSWER = re.compile(r"(?:answer is|####|answer:)\s*\$?\s*(-?[\d,]*\.?\d+)", re.IGNORECASE)


def extract_answer(text: str) -> str | None:
    """The final numeric answer of a worked solution: after 'The answer is' / '####' if present, else the last
    number in the text; normalised ('1,200.0' → '1200')."""
    found = _ANSWER.findall(text)
    if found:
        return normalize_number(found[-1])
    return normalize_number(text)


_ANSWER_END = re.compile(r"(?:answer is|####|answer:)\s*\$?\s*-?[\d,]*\.?\d+(?![\d,]*\d)", re.IGNORECASE)


def cut_at_answer(text: str) -> str:
    """The solution up to the end of its first final-answer statement (models often ramble on after it, and
    sometimes restate a different number); the whole text if it states none."""
    m = _ANSWER_END.search(text)
    return text[:m.end()] if m else text


class Vote(BaseModel):
    answer: str | None
    votes: float
    total: float

    @property
    def share(self) -> float:
        return self.votes / self.total if self.total else 0.0


def majority_vote(answers: Sequence[str | None], weights: Sequence[float] | None = None) -> Vote:
    """The most voted answer (None answers do not vote); ties go to the answer seen first."""
    tally: Counter[str] = Counter()
    order: dict[str, int] = {}
    for i, a in enumerate(answers):
        if a is None:
            continue
        tally[a] += weights[i] if weights is not None else 1.0
        order.setdefault(a, i)
    if not tally:
        return Vote(answer=None, votes=0.0, total=0.0)
    best = max(tally, key=lambda a: (tally[a], -order[a]))
    return Vote(answer=best, votes=tally[best], total=sum(tally.values()))


@verifier("vote", kinds=("math",))
class MajorityVote:
    """Self-consistency as a verifier: a candidate's score is the share of candidates that reach its final answer;
    it passes when its answer is the majority's. Costs nothing (no model call, no sandbox run)."""

    name = "vote"

    def verify(self, task, candidate: str, *, account: Account) -> Verdict:
        return self.verify_all(task, [candidate], account=account)[0]

    def verify_all(self, task, candidates: Sequence[str], *, account: Account) -> list[Verdict]:
        answers = [extract_answer(c) for c in candidates]
        vote = majority_vote(answers)
        counts = Counter(a for a in answers if a is not None)
        total = sum(counts.values())
        return [Verdict(passed=a is not None and a == vote.answer, score=counts[a] / total if a and total else 0.0,
                        loaded=a is not None, checks=total, passed_checks=counts[a] if a else 0,
                        detail=f"answer {a!r}: {counts[a] if a else 0} of {total} votes") for a in answers]
