"""Knobs of the ready-made graphs: how much to sample per wave, how many waves, how to test and how to select."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..search import SamplingParams

Selection = Literal["auto", "tests", "votes", "llm"]


class AgentConfig(BaseModel):
    """Settings of a codegen or SWE graph.

    selection: `tests` ranks by tests passed; `votes` by agreement on generated tests (CodeT); `llm` always ends with
    a selection turn (the model is shown the top candidates and picks one, CodeMonkeys-style); `auto` ranks by the
    given tests or by votes on generated ones, and asks the model only to break a tie between distinct candidates.
    """

    model_config = ConfigDict(extra="forbid")

    wave_size: int = Field(4, ge=1)  # samples (codegen) or trajectories (SWE) per solver wave
    max_waves: int = Field(3, ge=1)
    params: SamplingParams = Field(default_factory=SamplingParams)  # codegen sampling
    generate_tests: bool = True  # write tests with the model when the task gives none
    tester_samples: int = Field(4, ge=1)
    tester_max_tokens: int = Field(160, ge=1)
    selection: Selection = "auto"
    selection_top_k: int = Field(3, ge=2)  # candidates shown in a selection turn
    selection_max_tokens: int = Field(16, ge=1)
    # SWE trajectories
    max_turns: int = Field(6, ge=1)  # model turns per attempt
    attempts: int = Field(2, ge=1)  # attempts per trajectory; each later one sees the failing test output
    turn_max_tokens: int = Field(384, ge=1)
    turn_temperature: float = Field(0.7, ge=0)
    parallel: int = Field(4, ge=1)  # trajectories run at once (threads)
    # How a repo task's budget is split (decided in routing from what is left, see _routing.plan_share): the tester
    # and each wave's verification get at most these shares of what the task has left, the selector's share is kept
    # back from the solver, and the solver gets the rest — no agent can starve it.
    tester_share: float = Field(0.15, ge=0, le=0.5)
    verifier_share: float = Field(0.2, ge=0, le=0.5)
    selector_share: float = Field(0.05, ge=0, le=0.3)
    localize_top: int = Field(3, ge=1)  # functions a trajectory is shown first (localisation)
    usd_per_cpu_second: float = Field(0.0, ge=0)  # price of sandbox CPU time (test runs, tool runs)
