"""How many tasks a run keeps in flight when the user does not say (-j): for a local engine, enough sequences to
reach most of its batched throughput, read from the engine's own speed measurement.

A vLLM engine decodes one token for every live sequence per step, and a step with 8 sequences costs little more
than a step with one (measured here: SmolLM2 ~9x the tokens/s at 8 sequences, Qwen2.5-Coder-1.5B ~6x). One task at
a time therefore leaves most of the engine idle, and early stopping only beats best-of-N on cost when several
sequences share each step (bench/results: search_humaneval)."""

from __future__ import annotations

import math

SHARE_OF_PEAK = 0.8  # in-flight sequences: the fewest that reach this share of the 8-sequence throughput
MAX_SEQUENCES = 8  # what the measurement covers (it times 1 and 8 sequences)


def pick_concurrency(llm, wave_size: int) -> tuple[int, str]:
    """(tasks at once, why) from the engine's measured speed; 1 when the model is not an engine we measure."""
    tp = getattr(llm, "throughput", None)
    if tp is None or not getattr(tp, "calibrated", False):
        return 1, "1 task at a time (no engine speed to size it from; -j sets it)"

    def tokens_per_second(n: int) -> float:
        return n / tp.step(n)

    peak = tokens_per_second(MAX_SEQUENCES)
    sequences = next(n for n in range(1, MAX_SEQUENCES + 1) if tokens_per_second(n) >= SHARE_OF_PEAK * peak)
    tasks = max(1, math.ceil(sequences / max(1, wave_size)))
    gain = peak / tokens_per_second(1)
    return tasks, (f"{tasks} task(s) at once: {sequences} sequences in flight reach {SHARE_OF_PEAK:.0%} of the engine's "
                   f"throughput at {MAX_SEQUENCES} ({gain:.1f}x one sequence's tokens/s, measured on the engine); "
                   f"-j sets it")
