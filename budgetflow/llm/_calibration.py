"""How fast a vLLM engine is, measured on the engine itself, paid for by an account, and remembered per machine.

The speed only sizes a call's engine-time reservation (the hold watchdog enforces it whatever the estimate), so a
stale figure costs an extension, never the cap. Measuring is engine work like any other: it runs under a
reservation of its own on the account that first needs it, and the result is cached on disk, keyed by the model,
the engine's version and settings, and this machine, so later processes and runs on the machine pay nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..budget import BudgetExceeded
from ._models import CACHE_ROOT

if TYPE_CHECKING:
    from ..budget import Account
    from ._vllm_engine import VLLMEngine

# engine-seconds the measurement may hold, largest affordable first (a Qwen-1.5B on 2 loaded cores needs ~20,
# SmolLM2-135M ~2-4); an account that affords none of them is not charged and the engine keeps its defaults
HOLDS = (60.0, 20.0, 6.0)
# (prompt, n, max_tokens): a warm-up, the per-request overhead, decode steps at 1 and 8 sequences, a long prefill
REQUESTS = (("Hello", 1, 2), ("Hello", 1, 1), ("Hello", 1, 9), ("Hello", 8, 9), ("word " * 256, 1, 1))


@dataclass
class Throughput:
    """Engine speed: seconds per request, per prompt token, per decode step at 1 and 8 sequences.
    `drift` rises (never falls) when real calls turn out slower than predicted."""

    overhead: float = 0.05
    prefill_per_token: float = 0.0005
    step_1: float = 0.02
    step_8: float = 0.04
    drift: float = 1.0
    calibrated: bool = False

    def step(self, n: int) -> float:
        return max(self.step_1, self.step_1 + (self.step_8 - self.step_1) * (n - 1) / 7)

    def seconds(self, prompt_tokens: int, n: int, max_tokens: int) -> float:
        raw = self.overhead + prompt_tokens * self.prefill_per_token + max_tokens * self.step(n)
        return raw * self.drift

    def observe(self, prompt_tokens: int, n: int, steps: int, seconds: float) -> None:
        predicted = self.overhead + prompt_tokens * self.prefill_per_token + steps * self.step(n)
        if predicted > 0 and seconds > predicted * self.drift:
            self.drift = 0.7 * self.drift + 0.3 * (seconds / predicted)


def _machine() -> str:
    cpu = ""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                    if line.startswith("model name")), "")
    except OSError:
        pass
    return f"{platform.node()}|{os.cpu_count()}|{cpu}"


def cache_path(engine: "VLLMEngine", version: str, root: Path | None = None) -> Path:
    """The cache file for this engine: a managed server is keyed by model and settings (its port changes every
    run), someone else's server also by its URL."""
    where = "managed" if engine.server is not None else engine.base_url
    key = json.dumps([engine.served_model, where, version, engine.device, engine.max_model_len, _machine()])
    return (root or CACHE_ROOT / "calibration") / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def load(path: Path) -> Throughput | None:
    try:
        data = json.loads(path.read_text())
        return Throughput(**{**data, "drift": 1.0, "calibrated": True})
    except (OSError, ValueError, TypeError):
        return None


def store(path: Path, tp: Throughput) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({k: v for k, v in asdict(tp).items() if k not in ("drift", "calibrated")}))
    os.replace(tmp, path)


def measure(engine: "VLLMEngine", account: "Account") -> tuple[Throughput | None, float]:
    """Time the engine on a few small requests, each metered on the engine clock and watched against one
    reservation on `account`; commit what they used. Returns (speed, engine-seconds charged). The hold is the
    largest of HOLDS the account affords; when it affords none, or the measurement is cut at its hold, the speed is
    None: the engine then works from its defaults, which is safe (the watchdog enforces every hold) but may cut or
    extend more calls."""
    prompt_tokens = [engine.count_tokens(p) for p, _, _ in REQUESTS]
    inputs = sum(prompt_tokens)
    outputs = sum(n * m for _, n, m in REQUESTS)
    dim = engine.time_dimension
    reservation, worst = None, {}
    for hold in HOLDS:
        usd = engine.prices.worst_cost(engine.price_name, input_tokens=inputs, output_tokens=outputs, **{dim: hold})
        worst = {"usd": usd, "input_tokens": inputs, "output_tokens": outputs, dim: hold, "calls": len(REQUESTS)}
        try:
            reservation = account.reserve(**worst)
            break
        except BudgetExceeded:
            continue
    if reservation is None:
        return None, 0.0
    used, timings, cut = 0.0, [], False
    try:
        for prompt, n, max_tokens in REQUESTS:
            start = time.monotonic()
            seconds, cut = engine.timed_request(prompt, n, max_tokens, hold=worst[dim] - used)
            used += seconds
            timings.append(time.monotonic() - start)
            if cut:
                break
    except BaseException:
        reservation.commit(**{**worst, dim: used, "usd": engine.cost(inputs, outputs, used)})
        raise
    reservation.commit(usd=engine.cost(inputs, outputs, used), input_tokens=inputs, output_tokens=outputs,
                       calls=len(REQUESTS), **{dim: used})
    if cut:
        return None, used
    _, one_token, short_1, short_8, long_prompt = timings
    steps = REQUESTS[2][2] - 1
    tp = Throughput(calibrated=True)
    tp.overhead = max(0.005, one_token)
    tp.prefill_per_token = max(1e-6, (long_prompt - one_token) / max(1, prompt_tokens[4] - prompt_tokens[1]))
    tp.step_1 = max(1e-4, (short_1 - one_token) / steps)
    tp.step_8 = max(tp.step_1, (short_8 - one_token) / steps)
    return tp, used
