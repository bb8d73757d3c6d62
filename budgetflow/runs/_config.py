"""A batch run's settings: what `budgetflow run` was asked to do, saved as `DIR/run.json` so `--resume` finishes the
run with exactly the same settings (only where and how fast it runs may change)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

RUN_FILE = "run.json"

# Settings a resumed run may change: they decide where and how fast tasks run, not what they may spend.
MUTABLE_ON_RESUME = frozenset({"concurrency", "executor", "address", "ray_num_cpus"})


class RunConfigError(ValueError):
    """The run's settings are inconsistent, or a resume asked for different ones; the message says what to do."""


class SearchSettings(BaseModel):
    """How much each task may sample, and how."""

    model_config = ConfigDict(extra="forbid")

    max_samples: int = Field(8, ge=1)  # per task: samples (code), full solutions (math majority)
    wave_size: int = Field(1, ge=1)  # samples per model call
    max_tokens: int = Field(384, ge=1)
    temperature: float = Field(0.8, ge=0)
    chunk: int = Field(8, ge=1)  # allocate policy: tasks that share one allocation (no solver setting)


class RunConfig(BaseModel):
    """Everything a run needs, serialisable: the driver, local threads and Ray workers all build from it."""

    model_config = ConfigDict(extra="forbid")

    source: str  # humaneval | gsm8k100 | quixbugs | an absolute path (JSONL file or directory of repo tasks)
    limit: int | None = Field(None, ge=1)
    model: str
    budget_usd: float = Field(gt=0)
    strategy: str | None = None  # a registered solver (or the allocate policy); None: each task kind's default
    solver_options: dict = Field(default_factory=dict)  # --set KEY=VALUE: settings of the solver beyond the flags
    plugins: list[str] = Field(default_factory=list)  # --plugin: modules / .py files every worker loads first
    policy: Literal["equal", "allocate"] = "equal"
    search: SearchSettings = Field(default_factory=SearchSettings)
    # selective answering: withhold an answer whose confidence is below this (None: answer all); a result with no
    # confidence is answered unless abstain_unknown; utility counts +1 right, -wrong_penalty wrong, 0 withheld
    abstain_below: float | None = Field(None, ge=0, le=1)
    abstain_unknown: bool = False
    wrong_penalty: float = Field(1.0, ge=0, allow_inf_nan=False)
    name: str = Field(min_length=1, max_length=80)  # the run's ledger account; tasks are <name>/task/<id>
    out: str  # absolute path of the output directory
    ledger: str  # SQLAlchemy URL
    prices: dict[str, dict] = Field(default_factory=dict)  # price overrides: model → ModelPrice fields
    price_note: str | None = None  # set when a default price was applied
    engine_options: dict = Field(default_factory=dict)  # passed to get_llm (e.g. max_model_len for local models)
    sandbox: str = "process"  # a registered sandbox backend, or auto
    sandbox_cpu_hour: float = Field(0.0, ge=0)  # kept for run.json files of earlier versions; prices hold it now
    concurrency: int | None = Field(None, ge=1)  # tasks at once; None: picked from the engine's speed
    executor: Literal["local", "ray"] = "local"
    address: str | None = None  # Ray cluster address (executor ray)
    ray_num_cpus: float = Field(1.0, ge=0)  # CPUs each Ray worker actor asks for
    created: float = Field(default_factory=time.time)
    version: str = ""

    @field_validator("sandbox")
    @classmethod
    def _known_sandbox(cls, value: str) -> str:
        from ..sandbox import sandbox_kinds

        if value not in sandbox_kinds():
            raise ValueError(f"unknown sandbox backend {value!r}; use one of: {', '.join(sandbox_kinds())}")
        return value

    @property
    def run_account(self) -> str:
        return self.name

    @property
    def scoring_account(self) -> str:
        """A root account of its own: hidden-test scoring is not part of the run's budget."""
        return f"{self.name}-scoring"

    def task_account(self, task_id: str) -> str:
        return f"{self.name}/task/{task_id}"

    def scoring_child(self, task_id: str) -> str:
        return f"{self.scoring_account}/{task_id}"

    def chunk_account(self, index: int) -> str:
        return f"{self.name}/alloc/{index}"


def save_config(config: RunConfig, out: str | os.PathLike[str]) -> Path:
    """Write run.json atomically (a kill never leaves half a file)."""
    path = Path(out) / RUN_FILE
    tmp = path.with_suffix(".json.tmp")
    with open(tmp, "w") as f:
        f.write(config.model_dump_json(indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load_config(out: str | os.PathLike[str]) -> RunConfig:
    path = Path(out) / RUN_FILE
    try:
        data = json.loads(path.read_text())
        from .._registry import load_plugins

        for spec in data.get("plugins", []) if isinstance(data, dict) else []:
            try:  # the run's own solvers and backends, before its settings are checked against them
                load_plugins(spec)
            except ImportError as err:
                raise RunConfigError(f"{path}: the run's plugin cannot be loaded: {err}") from None
        return RunConfig.model_validate(data)
    except FileNotFoundError:
        raise RunConfigError(f"{out} holds no run to resume (no {RUN_FILE}); start one without --resume") from None
    except (ValueError, ValidationError) as err:
        raise RunConfigError(f"{path} is not a valid run file: {err}") from None


def merge_for_resume(saved: RunConfig, asked: dict) -> RunConfig:
    """The saved settings, with the mutable ones the user passed again; any other setting that differs is an error
    (a resumed run must spend under the same rules as the run it finishes)."""
    changed: dict = {}
    conflicts = []
    for key, value in asked.items():
        if value is None:
            continue
        nested = key in SearchSettings.model_fields
        current = getattr(saved.search if nested else saved, key)
        if current == value:
            continue
        if key in MUTABLE_ON_RESUME:
            changed[key] = value
        else:
            conflicts.append(f"--{key.replace('_', '-')}: run.json has {current!r}, you passed {value!r}")
    if conflicts:
        raise RunConfigError("--resume finishes a run with its saved settings; these differ: " + "; ".join(conflicts)
                             + ". Drop them (or start a new run in another --out).")
    return saved.model_copy(update=changed)
