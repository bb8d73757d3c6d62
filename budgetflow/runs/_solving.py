"""Which solver a task of the run uses, with which settings — all read from the solver registry
(`budgetflow.search.solvers`), so a strategy registered anywhere (a plugin file included) is one `--strategy` away.

A task uses `--strategy` when that solver handles its kind, else its kind's default (code: sample, math: majority,
repo: graph). `allocate` is not a solver but the cross-task policy (`--policy allocate`), accepted as a strategy name
for code tasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from ..search import SettingsError, solver_names, solver_settings, solvers
from ..tasks import task_kinds
from ._config import RunConfig

POLICY_STRATEGIES = {"allocate": ("code",)}  # strategies that are budget policies rather than per-task solvers


class StrategyError(ValueError):
    """A strategy that no task of the run can use, one that is not registered, or settings it refuses."""


def known_strategies() -> dict[str, tuple[str, ...]]:
    """Every strategy name a run accepts, with the task kinds it handles."""
    out = {name: tuple(meta["kinds"]) for name, _, meta in solvers.items()}
    out.update(POLICY_STRATEGIES)
    return out


def strategy_for(config: RunConfig, kind: str) -> str:
    """The strategy a task of `kind` runs with."""
    known = known_strategies()
    if config.strategy is not None and kind in known.get(config.strategy, ()):
        return config.strategy
    if kind == "code" and config.policy == "allocate":
        return "allocate"
    return task_kinds.get(kind).default_solver


def settings_for(config: RunConfig, strategy: str) -> BaseModel:
    """The solver's settings: the run's generic search flags where the solver has such a field, then the solver's
    own `--set KEY=VALUE` options; validated once."""
    name = "sample" if strategy == "allocate" else strategy  # the allocate policy samples like `sample`
    values: dict[str, Any] = config.search.model_dump(exclude_none=True, exclude={"chunk"})
    values.update(config.solver_options)
    try:
        return solver_settings(name, values, partial=True)
    except SettingsError as err:
        raise StrategyError(str(err)) from None


def check_strategy(config: RunConfig, kinds: set[str]) -> None:
    """Before anything is spent: the strategy exists, fits some task of the run, and its settings validate."""
    known = known_strategies()
    if config.strategy is not None:
        if config.strategy not in known:
            raise StrategyError(f"unknown --strategy {config.strategy!r}; registered: {', '.join(sorted(known))} "
                                f"(a plugin adds more: --plugin FILE)")
        if not any(k in known[config.strategy] for k in kinds):
            valid = "; ".join(f"{k}: {', '.join(n for n, ks in sorted(known.items()) if k in ks)}"
                              for k in sorted(kinds))
            raise StrategyError(f"--strategy {config.strategy} fits no task of this source ({valid})")
    if config.strategy == "allocate" and config.policy != "allocate":
        raise StrategyError("--strategy allocate is the allocate policy: drop --policy equal")
    if config.policy == "allocate" and "code" in kinds and strategy_for(config, "code") != "allocate":
        raise StrategyError("the allocate policy spends by sampling waves across code tasks; use it with the default "
                            "--strategy (or --strategy allocate)")
    unknown = set(config.solver_options)
    for kind in kinds:
        strategy = strategy_for(config, kind)
        model = solvers.meta("sample" if strategy == "allocate" else strategy)["settings"]
        unknown -= set(model.model_fields)
        settings_for(config, strategy)
    if unknown:
        raise StrategyError(f"--set {', '.join(sorted(unknown))}: no solver of this run has such a setting")


def solver_help() -> str:
    """One line per registered strategy, for `--help`."""
    lines = []
    for kind in task_kinds.names():
        names = [n for n in solver_names(kind)] + [n for n, ks in POLICY_STRATEGIES.items() if kind in ks]
        default = task_kinds.get(kind).default_solver
        lines.append(f"{kind}: " + " | ".join(f"{n} (default)" if n == default else n for n in sorted(names)))
    return "; ".join(lines)


def options_from(pairs: list[str] | None) -> Mapping[str, Any]:
    """`--set KEY=VALUE` options as a dict (values parsed as JSON where they parse, else kept as text)."""
    import json

    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise StrategyError(f"--set {pair!r}: give KEY=VALUE, e.g. --set width=4")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out
