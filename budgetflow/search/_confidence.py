"""How sure a solver is of its answer (`Result.confidence`, in [0, 1]), from the evidence it already has.

Checked candidates (code and repo tasks): two estimates, multiplied —
- the selected candidate's own tests: Laplace's rule of succession over its visible checks, (passed + 1) /
  (checks + 2), the chance it passes one more test it has not seen (3 of 3 passed: 0.8; 0 of 3: 0.2; it did not
  load: 0). Few visible tests leave room for doubt; many passed leave little.
- agreement: the share of checked candidates that score at least as well as the selected one. A task the model
  solves in 1 sample of 8 is one where a pass is more often luck than one it solves in 8 of 8.

Votes (math): the votes of the chosen answer over every sample drawn (a sample with no answer counts against it).
Step search: see `StepSearch.path_confidence`. No answer at all: 0. No checked candidate: None (no estimate).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..verifiers import Verdict


def visible_test_evidence(verdict: Verdict) -> float:
    """The rule of succession over the candidate's visible checks; 0 if it did not load."""
    if not verdict.loaded:
        return 0.0
    return (verdict.passed_checks + 1) / (verdict.checks + 2)


def checked_confidence(selected: Verdict | None, verdicts: Sequence[Verdict], *, answered: bool = True
                       ) -> float | None:
    """Confidence in the selected candidate from its verdict and every checked candidate's (the selected one's
    included): its test evidence × the share of verdicts that score at least as well. None when it was not checked;
    0 when there is no answer."""
    if not answered:
        return 0.0
    if selected is None or not verdicts:
        return None
    agree = sum(1 for v in verdicts if v.score >= selected.score) / len(verdicts)
    return _unit(visible_test_evidence(selected) * agree)


def vote_confidence(votes: float, samples: int) -> float:
    """The chosen answer's votes over every sample drawn, in [0, 1] (0 when nothing was drawn)."""
    return _unit(votes / samples) if samples else 0.0


def _unit(x: float) -> float:
    return min(1.0, max(0.0, x))


__all__ = ["checked_confidence", "visible_test_evidence", "vote_confidence"]
