"""A cascade of sampling configurations for code: cheap first, escalate only when nothing has passed yet.

Each stage is one configuration — model × temperature × top_p × max_tokens × samples (drawn in waves) — e.g. greedy
on the run's model, then sampled waves, then a larger or remote model. A stage runs until one of its candidates
passes the verifier (the task's visible unit tests) or its samples are drawn; the next stage runs only if no
candidate has passed. Each stage spends on its own child account, `<account>/stage<N>` (N: the stage's number in
the settings, whatever order it runs in), so the ledger says what each configuration cost.

Stages are given as JSON (a list of objects with the `CascadeStage` fields) or compactly, comma-separated:

    [MODEL:]T<temperature>x<samples>[w<wave size>][m<max tokens>][p<top p>]

    --set stages="T0x1,T0.8x4w2,local/qwen2.5-coder-1.5b:T0x1"

`run_all` runs every stage however early one passes (calibration; see `_cascade_learn.py`), and `order` runs a
subset of the stages in another order (what calibration learned).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..llm import LLM
from ..tasks import CodeTask
from ._confidence import checked_confidence
from ._protocol import Candidate, Resources, Result, StopReason, solver
from ._sampling import CODE_STOP, CodeAttempt, SamplingParams

MAX_STAGES = 6  # calibration searches every ordered subset exactly: 1,956 orders at 6 stages

_SPEC = re.compile(r"T(?P<t>\d+(?:\.\d+)?)x(?P<n>\d+)(?:w(?P<w>\d+))?(?:m(?P<m>\d+))?(?:p(?P<p>\d*\.?\d+))?")
_FORMAT = "[MODEL:]T<temperature>x<samples>[w<wave>][m<max_tokens>][p<top_p>], e.g. T0x1 or T0.8x4w2"


class CascadeStage(BaseModel):
    """One configuration of the cascade."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None  # None: the run's model
    temperature: float = Field(0.0, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)  # None: the cascade's max_tokens
    samples: int = Field(1, ge=1)
    wave_size: int | None = Field(None, ge=1)  # samples per model call; None: all of the stage's samples at once

    @model_validator(mode="after")
    def _greedy_draws_once(self) -> "CascadeStage":
        if self.temperature == 0 and self.samples > 1:
            raise ValueError(f"T0x{self.samples}: greedy decoding (temperature 0) draws the same completion every "
                             f"time; use T0x1, or a temperature above 0 for more samples")
        return self

    def label(self) -> str:
        """The stage in the compact syntax (what reports show)."""
        out = f"T{self.temperature:g}x{self.samples}"
        out += f"w{self.wave_size}" if self.wave_size and self.wave_size != self.samples else ""
        out += f"m{self.max_tokens}" if self.max_tokens else ""
        out += f"p{self.top_p:g}" if self.top_p != 0.95 else ""
        return f"{self.model}:{out}" if self.model else out


def parse_stage(text: str, number: int = 1) -> CascadeStage:
    """One stage from the compact syntax; ValueError naming the stage and the expected form."""
    part = text.strip()
    model, sep, spec = part.rpartition(":")  # the spec has no ':'; a model name (a URL) may
    match = _SPEC.fullmatch(spec.strip())
    if match is None or (sep and not model.strip()):
        raise ValueError(f"stage {number} {part!r}: expected {_FORMAT}")
    fields: dict[str, Any] = {"temperature": float(match["t"]), "samples": int(match["n"])}
    for key, name, cast in (("w", "wave_size", int), ("m", "max_tokens", int), ("p", "top_p", float)):
        if match[key] is not None:
            fields[name] = cast(match[key])
    if sep:
        fields["model"] = model.strip().removeprefix("model=")
    return CascadeStage(**fields)


def parse_stages(value: Any) -> Any:
    """`stages` as given: a compact string, a list of compact strings, or JSON objects (left to pydantic)."""
    if isinstance(value, str):
        value = [p for p in value.split(",") if p.strip()]
    if isinstance(value, list):
        return [parse_stage(v, i) if isinstance(v, str) else v for i, v in enumerate(value, start=1)]
    return value


class CascadeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stages: list[CascadeStage] = Field(default_factory=lambda: parse_stages("T0x1,T0.8x4"))
    max_tokens: int = Field(384, ge=1)  # for stages that give none (the run's --max-tokens)
    order: list[int] | None = None  # stage numbers (1-based) to run, in this order; None: all, as given
    run_all: bool = False  # run every stage even after a pass (calibration measures each configuration)
    calibrate: int = Field(0, ge=0)  # batch runs: learn the order on the first N code tasks, apply it to the rest
    worth_usd: float | None = Field(None, gt=0)  # learning: what one more solved task is worth (None: solve most)

    @field_validator("stages", mode="before")
    @classmethod
    def _compact(cls, value: Any) -> Any:
        return parse_stages(value)

    @model_validator(mode="after")
    def _consistent(self) -> "CascadeSettings":
        if not 1 <= len(self.stages) <= MAX_STAGES:
            raise ValueError(f"give 1 to {MAX_STAGES} stages, not {len(self.stages)}")
        if self.order is not None:
            bad = [n for n in self.order if not 1 <= n <= len(self.stages)]
            if bad or not self.order or len(set(self.order)) != len(self.order):
                raise ValueError(f"order {self.order}: distinct stage numbers from 1 to {len(self.stages)}")
        return self

    def stage_order(self) -> list[int]:
        return list(self.order) if self.order else list(range(1, len(self.stages) + 1))


def stage_llm(stage: CascadeStage, resources: Resources) -> LLM:
    """The stage's model: the run's, or another one built lazily by the run (`resources.llm_for`) or, outside a
    run, by `get_llm` with the run's model's price book."""
    if stage.model is None or stage.model == resources.llm.name:
        return resources.llm
    if resources.llm_for is not None:
        return resources.llm_for(stage.model)
    from ..llm import get_llm

    return get_llm(stage.model, prices=getattr(resources.llm, "prices", None))


def _spend(attempt: CodeAttempt) -> dict[str, float]:
    return {k: v for k, v in attempt.account.spent().model_dump().items() if v}


@solver("cascade", kinds=("code",), settings=CascadeSettings, verifier="unit-tests")
class CascadeSolver:
    """Stages of sampling configurations in order; the next runs only when no candidate has passed yet."""

    def __init__(self, settings: CascadeSettings):
        self.settings = settings

    def solve(self, task: CodeTask, resources: Resources) -> Result:
        s = self.settings
        rows: list[dict[str, Any]] = []
        candidates: list[Candidate] = []
        best: Candidate | None = None
        solved_by: int | None = None
        stopped: str | None = None
        for number in s.stage_order():
            stage = s.stages[number - 1]
            params = SamplingParams(max_tokens=stage.max_tokens or s.max_tokens, temperature=stage.temperature,
                                    top_p=stage.top_p, stop=list(CODE_STOP))
            account = resources.account.child(f"{resources.account.name}/stage{number}")
            attempt = CodeAttempt(stage_llm(stage, resources), task, resources.verifier, account, params)
            wave = stage.wave_size or stage.samples
            while len(attempt.candidates) < stage.samples and not attempt.solved and attempt.stopped is None:
                attempt.wave(min(wave, stage.samples - len(attempt.candidates)))
            for cand in attempt.candidates:
                cand.id, cand.source = f"s{number}-{cand.id}", f"stage{number} {stage.label()}"
                cand.meta["stage"] = number
                if best is None or cand.score > best.score:  # ties keep the earlier (cheaper) stage's
                    best = cand
            candidates += attempt.candidates
            spend = _spend(attempt)
            rows.append({"stage": number, "config": stage.label(), "model": attempt.llm.name,
                         "samples": len(attempt.candidates), "passed": attempt.solved,
                         "best_score": attempt.best.score if attempt.best else None, "usd": spend.get("usd", 0.0),
                         "spend": spend, "stopped": attempt.stopped})
            if attempt.solved and solved_by is None:
                solved_by = number
            if attempt.stopped is not None:
                stopped = attempt.stopped
                break
            if solved_by is not None and not s.run_all:
                break
        reason: StopReason = ("solved" if best is not None and best.passed_visible
                              else "budget" if stopped else "exhausted")
        log = [f"stage{r['stage']} {r['config']}: {r['samples']} sample(s), "
               f"{'passed' if r['passed'] else 'no pass'}, ${r['usd']:.6f}" for r in rows]
        return Result(
            task_id=task.id, reason=reason, kind="code", best=best, answer=best.text if best else None,
            confidence=checked_confidence(best.verdict if best is not None else None,
                                          [c.verdict for c in candidates if c.verdict is not None],
                                          answered=best is not None),
            candidates=candidates, samples=len(candidates), spend=resources.account.spend_by_part(),
            account=resources.account.name, notes=[stopped] if stopped else [], log=log,
            details={"cascade": {"mode": "calibrate" if s.run_all else "cascade", "order": s.stage_order(),
                                 "solved_by": solved_by, "stages": rows}})


__all__ = ["MAX_STAGES", "CascadeSettings", "CascadeSolver", "CascadeStage", "parse_stage", "parse_stages",
           "stage_llm"]
