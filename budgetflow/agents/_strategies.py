"""How the codegen solver spends one wave: a search strategy from budgetflow.search run on a `CodeAttempt`, which
keeps every candidate (for voting later), checks each on the run's tests, and stops cleanly on a budget refusal."""

from __future__ import annotations

from collections.abc import Callable

from ..search import CodeAttempt

WaveStrategy = Callable[[CodeAttempt, int], None]  # (attempt, samples this wave) -> draws into attempt.candidates


def sample_wave(attempt: CodeAttempt, k: int) -> None:
    """`sample_until_pass` within a wave: one sample per call, stop at the first that passes every test."""
    for _ in range(k):
        attempt.wave(1)
        if attempt.stopped or attempt.solved:
            return


def best_of_n_wave(attempt: CodeAttempt, k: int) -> None:
    """`best_of_n`: k samples in one batched call, all checked."""
    attempt.wave(k)


STRATEGIES: dict[str, WaveStrategy] = {
    "sample": sample_wave,
    "sample_until_pass": sample_wave,
    "best_of_n": best_of_n_wave,
}


def resolve_strategy(strategy: str | WaveStrategy) -> WaveStrategy:
    if callable(strategy):
        return strategy
    try:
        return STRATEGIES[strategy]
    except KeyError:
        raise ValueError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)} "
                         f"or a callable (attempt: CodeAttempt, k: int) -> None") from None
