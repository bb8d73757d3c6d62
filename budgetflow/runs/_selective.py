"""Selective answering: answer a task only when the solver's confidence reaches a threshold, and measure what that buys.

A run with `--abstain-below T` withholds every answer whose confidence is below T (the answer stays in the record,
marked `abstained`, so it can be audited and scored). A result with no confidence (None: the solver has no estimate)
is answered, unless the run says `--abstain-unknown`. Utility counts +1 for a right answer, -P for a wrong one
(`--wrong-penalty P`, default 1) and 0 for an abstention.

`risk_coverage` reads the scored records of a run and answers, for every threshold worth trying (each distinct
confidence, and "above all of them" — abstain on everything), how many tasks would be answered (coverage), how many
of those would be wrong (risk), and the utility; then the best threshold, always answering, and the run as it ran.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel


def abstains(confidence: float | None, threshold: float | None, *, abstain_unknown: bool = False) -> bool:
    """Whether an answer with `confidence` is withheld under `threshold` (None: no threshold, always answer)."""
    if threshold is None:
        return False
    if confidence is None:
        return abstain_unknown
    return confidence < threshold


class Outcome(BaseModel):
    """What answering at one threshold gives over the scored tasks."""

    threshold: float | None  # answer when confidence ≥ this; None: above every confidence (nothing known answered)
    answered: int
    correct: int
    wrong: int
    abstained: int
    coverage: float  # answered / scored
    risk: float | None  # wrong / answered (None: nothing answered)
    accuracy: float | None  # correct / answered: selective accuracy
    utility: float  # correct - penalty × wrong
    utility_per_task: float  # utility / scored


class Selective(BaseModel):
    """The risk-coverage curve of a run, with the utility at each threshold."""

    penalty: float
    scored: int  # tasks with a hidden-test verdict (the others cannot count)
    unknown: int  # scored tasks whose solver gave no confidence
    abstain_unknown: bool
    curve: list[Outcome]  # by threshold, ascending (coverage descending); the last is "abstain on every known"
    always: Outcome  # answering everything
    best: Outcome  # the threshold of highest utility (ties: the one answering more)
    as_run: Outcome | None = None  # what the run's own abstentions gave (None: the run set no threshold)
    run_threshold: float | None = None


def outcome(points: Sequence[tuple[float | None, bool, bool]], threshold: float | None, penalty: float) -> Outcome:
    """Tally `(confidence, correct, answered)` triples at `threshold` (only to label the outcome)."""
    answered = [correct for _, correct, ans in points if ans]
    right = sum(answered)
    wrong = len(answered) - right
    utility = right - penalty * wrong
    n = len(points)
    return Outcome(threshold=threshold, answered=len(answered), correct=right, wrong=wrong,
                   abstained=n - len(answered), coverage=len(answered) / n if n else 0.0,
                   risk=wrong / len(answered) if answered else None,
                   accuracy=right / len(answered) if answered else None,
                   utility=utility, utility_per_task=utility / n if n else 0.0)


def _at(scored: Sequence[tuple[float | None, bool]], threshold: float | None, penalty: float,
        abstain_unknown: bool) -> Outcome:
    """Answer when confidence ≥ threshold; threshold None answers no task whose confidence is known."""
    def answers(conf: float | None) -> bool:
        if conf is None:
            return not abstain_unknown
        return threshold is not None and conf >= threshold
    return outcome([(c, ok, answers(c)) for c, ok in scored], threshold, penalty)


def risk_coverage(scored: Iterable[tuple[float | None, bool]], *, penalty: float = 1.0, abstain_unknown: bool = False,
                  as_run: Sequence[bool] | None = None, run_threshold: float | None = None) -> Selective | None:
    """The curve over `(confidence, correct)` pairs of scored tasks; `as_run`, aligned with them, says which the run
    actually withheld. None when there is nothing scored."""
    pairs = list(scored)
    if not pairs:
        return None
    known = sorted({c for c, _ in pairs if c is not None})
    curve = [_at(pairs, t, penalty, abstain_unknown) for t in known] + [_at(pairs, None, penalty, abstain_unknown)]
    always = outcome([(c, ok, True) for c, ok in pairs], 0.0, penalty)
    best = max(curve, key=lambda o: (o.utility, o.coverage))
    ran = None
    if as_run is not None:
        ran = outcome([(c, ok, not withheld) for (c, ok), withheld in zip(pairs, as_run)], run_threshold, penalty)
    return Selective(penalty=penalty, scored=len(pairs), unknown=sum(1 for c, _ in pairs if c is None),
                     abstain_unknown=abstain_unknown, curve=curve, always=always, best=best, as_run=ran,
                     run_threshold=run_threshold)


def run_selective(records, *, penalty: float = 1.0, abstain_unknown: bool = False,
                  threshold: float | None = None) -> Selective | None:
    """`risk_coverage` of a run's records (TaskRecord): the scored ones, with what the run withheld."""
    scored = [r for r in records if r.solved is not None]
    return risk_coverage([(r.confidence, bool(r.solved)) for r in scored], penalty=penalty,
                         abstain_unknown=abstain_unknown, as_run=[r.abstained for r in scored],
                         run_threshold=threshold)


__all__ = ["Outcome", "Selective", "abstains", "outcome", "risk_coverage", "run_selective"]
