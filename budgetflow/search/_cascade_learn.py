"""Learning a cascade from calibration (OSCA-style: solved per dollar from observed per-configuration outcomes).

Calibration runs every stage on a few tasks (`run_all`), so each calibration task says, per stage, whether it passed
the visible tests and what it cost. A candidate cascade — an ordered subset of the stages — is then evaluated on
those tasks exactly as it would have run: stages in order, each paid for, stopping at the first that passed. Using
the observed joint outcomes (not per-stage pass rates multiplied as if independent) matters because difficulty is
shared: a task greedy decoding misses is one sampling is more likely to miss too.

The rule (exact search over every ordered subset; `MAX_STAGES` keeps that ≤ 1,956 orders):
- only orders whose expected cost per task fits `budget_usd` (when given) are eligible;
- with `worth_usd` (what one more solved task is worth), maximise expected solved × worth − expected cost: a stage
  stays only if the extra tasks it solves pay for what it costs where it sits in the order;
- without it, maximise expected solved, then minimise expected cost (the cheapest order that solves the most);
- remaining ties: fewer stages, then the order given. If calibration solved nothing, that is the cheapest stage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import permutations

from pydantic import BaseModel, Field

Observation = Mapping[int, tuple[bool, float]]  # stage number -> (passed the visible tests, USD it cost)


class ConfigStats(BaseModel):
    """One configuration's calibration figures."""

    stage: int
    config: str = ""
    tasks: int
    passed: int
    pass_rate: float
    mean_usd: float


class LearnedCascade(BaseModel):
    order: list[int]  # stage numbers, in the order they run
    expected_solved: float  # per task (visible tests, on the calibration tasks)
    expected_usd: float  # per task
    tasks: int  # calibration tasks the figures come from
    excluded: int = 0  # calibration tasks left out (a stage did not run to its end: budget, error)
    table: list[ConfigStats] = Field(default_factory=list)
    rule: str = ""


def evaluate_order(observations: Sequence[Observation], order: Sequence[int]) -> tuple[float, float]:
    """(expected solved, expected USD) per task of running `order` as a cascade on the observed tasks."""
    if not observations:
        return 0.0, 0.0
    solved = usd = 0.0
    for obs in observations:
        for stage in order:
            passed, cost = obs[stage]
            usd += cost
            if passed:
                solved += 1
                break
    return solved / len(observations), usd / len(observations)


def config_table(observations: Sequence[Observation], stages: Sequence[int],
                 labels: Mapping[int, str] | None = None) -> list[ConfigStats]:
    n = len(observations)
    return [ConfigStats(stage=s, config=(labels or {}).get(s, ""), tasks=n,
                        passed=sum(o[s][0] for o in observations),
                        pass_rate=sum(o[s][0] for o in observations) / n if n else 0.0,
                        mean_usd=sum(o[s][1] for o in observations) / n if n else 0.0) for s in stages]


def learn_cascade(observations: Sequence[Observation], stages: Sequence[int], *,
                  labels: Mapping[int, str] | None = None, budget_usd: float | None = None,
                  worth_usd: float | None = None, excluded: int = 0) -> LearnedCascade:
    """The cascade the module doc's rule picks from `observations` (each covering every stage in `stages`)."""
    stages = list(stages)
    if not stages:
        raise ValueError("learn_cascade: no stages to choose from")
    rank = {s: i for i, s in enumerate(stages)}
    best_key, best = None, None
    for size in range(1, len(stages) + 1):
        for order in permutations(stages, size):
            solved, usd = evaluate_order(observations, order)
            if budget_usd is not None and usd > budget_usd + 1e-12:
                continue
            value = solved * worth_usd - usd if worth_usd is not None else solved
            # larger is better everywhere: value, then cheaper, then shorter, then the order given
            key = (round(value, 12), -round(usd, 12), -size, tuple(-rank[s] for s in order))
            if best_key is None or key > best_key:
                best_key, best = key, (list(order), solved, usd)
    if best is None:  # nothing fits the budget: the cheapest single stage
        order = [min(stages, key=lambda s: (evaluate_order(observations, [s])[1], rank[s]))]
        solved, usd = evaluate_order(observations, order)
        best = (order, solved, usd)
        rule = f"no order fits {budget_usd:.6g} USD per task: the cheapest stage alone"
    else:
        rule = (f"max expected solved x {worth_usd:g} USD - expected cost" if worth_usd is not None
                else "max expected solved, then min expected cost")
        rule += f", expected cost <= {budget_usd:.6g} USD per task" if budget_usd is not None else ""
    return LearnedCascade(order=best[0], expected_solved=best[1], expected_usd=best[2], tasks=len(observations),
                          excluded=excluded, table=config_table(observations, stages, labels),
                          rule=rule + " (exact search over ordered subsets, observed joint outcomes)")


def observation_from(details: Mapping, stages: Sequence[int]) -> Observation | None:
    """A calibration task's outcome per stage from its `Result.details["cascade"]`; None unless every stage ran to
    its end (a stage cut by the budget or an error says nothing about its pass rate)."""
    rows = {r["stage"]: r for r in details.get("stages", [])}
    if any(s not in rows or rows[s].get("stopped") for s in stages):
        return None
    return {s: (bool(rows[s]["passed"]), float(rows[s]["usd"])) for s in stages}


__all__ = ["ConfigStats", "LearnedCascade", "Observation", "config_table", "evaluate_order", "learn_cascade",
           "observation_from"]
