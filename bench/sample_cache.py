"""A sample cache for benchmarks: generate a pool of samples per prompt once, replay it for every strategy.

Keyed by model, a hash of (prompt, sampling parameters) and sample index; each sample keeps its text, token counts
and engine-seconds, so a replay charges the ledger as if the sample had just been generated. Files are JSONL
(one sample per line) under ~/.cache/budgetflow/samples/<model>/<hash>.jsonl — appending makes generation resumable.

Generate (resumable; run in the background):
    python bench/sample_cache.py humaneval --model local/qwen2.5-coder-1.5b --samples 8
    python bench/sample_cache.py humaneval --model local/smollm2-135m --samples 16
    python bench/sample_cache.py humaneval --subset 40 --temperature 0 --samples 1   # greedy, on a fixed subset
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydantic import BaseModel

from budgetflow.budget import Account, Budget, BudgetExceeded, PriceBook
from budgetflow.llm import Completion, Generation, Usage
from budgetflow.llm._models import CACHE_ROOT

CACHE_DIR = CACHE_ROOT / "samples"
CODE_STOP = ["\ndef ", "\nclass ", "\nif __name__", "\n```"]  # vLLM takes at most 4
# $ per engine-hour on this CPU machine: what a 2-core cloud VM costs, rounded up
CPU_HOUR_USD = {"local/qwen2.5-coder-1.5b": 0.10, "local/smollm2-135m": 0.10}


class SamplingParams(BaseModel):
    max_tokens: int = 384
    temperature: float = 0.8
    top_p: float = 0.95
    stop: list[str] = CODE_STOP


class CachedSample(BaseModel):
    index: int
    text: str
    finish_reason: str | None
    input_tokens: int
    output_tokens: int
    engine_seconds: float  # this sample's share of the engine time of the call that produced it


def prompt_key(prompt: str, params: SamplingParams) -> str:
    blob = json.dumps({"prompt": prompt, "params": params.model_dump()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class SampleCache:
    """Samples for one model, on disk. Thread-safe appends."""

    def __init__(self, model: str, params: SamplingParams | None = None, root: Path = CACHE_DIR):
        self.model = model
        self.params = params or SamplingParams()
        self.dir = Path(root) / model.replace("/", "__")
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def path(self, prompt: str) -> Path:
        return self.dir / f"{prompt_key(prompt, self.params)}.jsonl"

    def load(self, prompt: str) -> list[CachedSample]:
        path = self.path(prompt)
        if not path.exists():
            return []
        out: dict[int, CachedSample] = {}
        for line in path.read_text().splitlines():
            try:
                s = CachedSample.model_validate_json(line)
            except ValueError:
                continue  # a torn last line from an interrupted run
            out.setdefault(s.index, s)
        return [out[i] for i in sorted(out)]

    def append(self, prompt: str, samples: list[CachedSample]) -> None:
        with self._lock, self.path(prompt).open("a") as fh:
            for s in samples:
                fh.write(s.model_dump_json() + "\n")

    def fill(self, llm, prompt: str, count: int, account: Account) -> list[CachedSample]:
        """Generate samples until `count` are cached for `prompt` (one batched call for the missing ones)."""
        have = self.load(prompt)
        missing = count - len(have)
        if missing <= 0:
            return have[:count]
        p = self.params
        gen = llm.generate(prompt, account=account, n=missing, max_tokens=p.max_tokens, temperature=p.temperature,
                           top_p=p.top_p, stop=p.stop)
        new = split_generation(gen, start=len(have), prompt_tokens=gen.usage.input_tokens)
        self.append(prompt, new)
        return have + new


def split_generation(gen: Generation, start: int, prompt_tokens: int) -> list[CachedSample]:
    """Apportion one n-sample call to its samples: the prompt (tokens and half the engine time) evenly, the
    output tokens and the other half of the engine time by each sample's length."""
    n = len(gen.completions)
    lengths = [max(1, _count(c)) for c in gen.completions]
    scale = max(1, gen.usage.output_tokens) / sum(lengths)
    out_tokens = [max(1, round(t * scale)) for t in lengths]
    shares = [0.5 / n + 0.5 * t / sum(out_tokens) for t in out_tokens]
    prompt_share = [prompt_tokens // n + (1 if i < prompt_tokens % n else 0) for i in range(n)]
    return [CachedSample(index=start + i, text=c.text, finish_reason=c.finish_reason, input_tokens=prompt_share[i],
                         output_tokens=out_tokens[i], engine_seconds=gen.usage.engine_seconds * shares[i])
            for i, c in enumerate(gen.completions)]


def _count(c: Completion) -> int:
    if c.logprobs is not None:
        return len(c.logprobs)
    return max(1, len(c.text) // 3)  # approximate; rescaled to the call's exact total


class PoolExhausted(RuntimeError):
    """The replay was asked for more samples than the cache holds for a prompt."""


class ReplayLLM:
    """An `LLM` for benchmarks that serves cached samples in index order and charges the ledger for each as the
    real engine did (tokens and engine-seconds), through a reservation like a live call. Only `generate` with the
    cache's sampling parameters is supported."""

    def __init__(self, cache: SampleCache, prices: PriceBook, time_dimension: str = "cpu_seconds"):
        self.name = cache.model
        self.cache = cache
        self.prices = prices
        self.time_dimension = time_dimension
        self._cursor: dict[str, int] = {}
        self._pools: dict[str, list[CachedSample]] = {}
        self._lock = threading.Lock()

    def count_tokens(self, prompt) -> int:  # pragma: no cover - not needed by the benchmarks
        raise NotImplementedError("ReplayLLM counts no tokens; use the live engine")

    def available(self, prompt: str) -> int:
        return len(self._pool(prompt))

    def _pool(self, prompt: str) -> list[CachedSample]:
        key = prompt_key(prompt, self.cache.params)
        if key not in self._pools:
            self._pools[key] = self.cache.load(prompt)
        return self._pools[key]

    def reset(self) -> None:
        self._cursor.clear()

    def _usd(self, s: CachedSample) -> float:
        return self.prices.cost(self.name, input_tokens=s.input_tokens, output_tokens=s.output_tokens,
                                **{self.time_dimension: s.engine_seconds})

    def generate(self, prompt: str, *, account: Account, n: int = 1, max_tokens: int = 256, **_: object) -> Generation:
        with self._lock:
            key = prompt_key(prompt, self.cache.params)
            pool = self._pool(prompt)
            start = self._cursor.get(key, 0)
            if start + n > len(pool):
                raise PoolExhausted(f"{self.name}: {len(pool)} cached samples for this prompt, asked for "
                                    f"#{start}..#{start + n - 1}")
            picked = pool[start:start + n]
            # worst case as a live call would reserve it: every sample at its real length, time as measured
            amounts = {"usd": sum(self._usd(s) for s in picked), "input_tokens": sum(s.input_tokens for s in picked),
                       "output_tokens": sum(s.output_tokens for s in picked),
                       self.time_dimension: sum(s.engine_seconds for s in picked), "calls": 1}
            reservation = account.reserve(**amounts)  # BudgetExceeded here, before anything is "sent"
            self._cursor[key] = start + n
        reservation.commit(**amounts)
        usage = Usage(input_tokens=amounts["input_tokens"], output_tokens=amounts["output_tokens"],
                      engine_seconds=amounts[self.time_dimension], usd=amounts["usd"])
        return Generation(model=self.name, completions=[Completion(text=s.text, finish_reason=s.finish_reason)
                                                        for s in picked],
                          usage=usage, requested_max_tokens=max_tokens, max_tokens=max_tokens)

    def score(self, prompt: str, continuation: str, *, account: Account):  # pragma: no cover
        raise NotImplementedError("ReplayLLM cannot score; use the live engine")


def price_book(models: list[str]) -> PriceBook:
    book = PriceBook()
    for m in models:
        book.set(m, cpu_hour=CPU_HOUR_USD.get(m, 0.10))
    return book


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", choices=["humaneval"])
    ap.add_argument("--model", default="local/qwen2.5-coder-1.5b")
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--subset", type=int, default=None, help="a fixed random subset of this many tasks")
    ap.add_argument("--seed", type=int, default=0, help="the subset's seed")
    ap.add_argument("--temperature", type=float, default=0.8, help="0: greedy (draw --samples 1)")
    ap.add_argument("--workers", type=int, default=2, help="concurrent requests (batched by the engine)")
    ap.add_argument("--max-tokens", type=int, default=384)
    args = ap.parse_args()
    from budgetflow.llm._server import OFFLINE_ENV

    for k, v in {**OFFLINE_ENV, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}.items():  # nothing phones home
        os.environ.setdefault(k, v)

    from budgetflow.budget import Ledger
    from budgetflow.llm import get_llm, shutdown
    from budgetflow.tasks import load_humaneval

    from subsets import fixed_subset

    tasks = fixed_subset(load_humaneval(args.limit), args.subset, args.seed)
    cache = SampleCache(args.model, SamplingParams(max_tokens=args.max_tokens, temperature=args.temperature))
    prices = price_book([args.model])
    llm = get_llm(args.model, prices=prices, max_model_len=2048)
    ledger = Ledger(CACHE_DIR / "generation-ledger.db")
    account = ledger.root("sample-cache", Budget()).child(args.model)
    t0 = time.monotonic()
    done = 0
    lock = threading.Lock()

    def one(task) -> None:
        nonlocal done
        try:
            cache.fill(llm, task.prompt, args.samples, account)
        except (BudgetExceeded, RuntimeError) as err:
            print(f"{task.id}: {err}", file=sys.stderr, flush=True)
        with lock:
            done += 1
            spent = account.spent()
            print(f"[{time.monotonic() - t0:7.0f}s] {done}/{len(tasks)} {task.id} "
                  f"out_tokens={spent.output_tokens} cpu_s={spent.cpu_seconds:.0f}", flush=True)

    try:
        with ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(one, tasks))
    finally:
        shutdown()
        ledger.close()


if __name__ == "__main__":
    main()
