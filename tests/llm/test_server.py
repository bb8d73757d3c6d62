"""Managed engine lifecycle, model preparation, and name resolution."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from budgetflow import Budget, PriceBook, UnpricedModel
from budgetflow.llm import ModelNotAvailable, get_llm

from ..conftest import REPO

SERVE_AND_WAIT = """
import sys, time
from budgetflow.llm import VLLMServer, prepare
srv = VLLMServer(prepare("smollm2-135m"), "smollm2-135m", device="cpu", max_model_len=1024).start()
print(srv.port, srv.proc.pid, srv.log_path, flush=True)
time.sleep(600)
"""


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.mark.timeout(400)
def test_the_engine_dies_with_its_parent_even_on_sigkill():
    parent = subprocess.Popen([sys.executable, "-c", SERVE_AND_WAIT], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    line = parent.stdout.readline()
    assert line, parent.stderr.read()[-3000:]
    port, pid, log_path = line.split()
    port, pid = int(port), int(pid)
    assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
    os.kill(parent.pid, signal.SIGKILL)  # no chance to clean up: the kernel must take the engine down
    parent.wait()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and _group_alive(pid):
        time.sleep(0.5)
    # the API server's death takes its engine-core workers (same process group) down with it
    while time.monotonic() < deadline and _group_alive(pid):
        time.sleep(0.5)
    assert not _group_alive(pid), "engine processes outlived their parent"
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
    assert "Application startup complete" in open(log_path).read()  # logs are kept


def test_unpriced_local_model_is_refused_before_anything_starts():
    with pytest.raises(UnpricedModel, match="local/smollm2-135m"):
        get_llm("local/smollm2-135m", prices=PriceBook())


def test_bad_names_are_clear_errors(prices):
    with pytest.raises(ModelNotAvailable, match="unknown local model"):
        get_llm("local/gpt-17", prices=prices)
    with pytest.raises(ValueError, match="vllm/<served-model>@<base-url>"):
        get_llm("vllm/no-url", prices=prices)


def test_someone_elses_vllm_server_by_url(smol_server, account, counters):
    prices = PriceBook()
    prices.set("vllm/smollm2-135m", input_per_million=0.5, output_per_million=1.0)  # priced per token
    llm = get_llm(f"vllm/smollm2-135m@{smol_server.base_url}", prices=prices)
    measuring = account.ledger.root("measuring", Budget(usd=1))
    llm.calibrate(measuring)  # measured once (or read from this machine's cache), paid by the account given
    before = counters.read()
    gen = llm.generate("def square(x):", account=account, max_tokens=12)
    assert account.spent().output_tokens == gen.usage.output_tokens == counters.delta(before)["generation"]
    assert account.spent().usd == pytest.approx((gen.usage.input_tokens * 0.5 + gen.usage.output_tokens) / 1e6)
    assert account.spent().cpu_seconds > 0  # engine time is recorded even when it is not what is priced


@pytest.mark.timeout(300)
def test_models_prepare_and_verify_from_scratch(tmp_path):
    env = {**os.environ, "BUDGETFLOW_CACHE": str(tmp_path), "COLUMNS": "200"}
    run = lambda *a: subprocess.run([sys.executable, "-m", "budgetflow", "models", *a], cwd=REPO, env=env,
                                    capture_output=True, text=True, timeout=280)
    listed = run("list")
    assert "installed, not prepared" in listed.stdout
    prepared = run("prepare", "smollm2-135m")
    assert prepared.returncode == 0, prepared.stderr[-2000:]
    assert "prepared in" in prepared.stdout and "converting" in prepared.stderr
    assert run("verify", "smollm2-135m").returncode == 0
    assert "already prepared" in run("prepare", "smollm2-135m").stdout  # once only
    weights = tmp_path / "models" / "smollm2-135m" / "config.json"
    weights.write_text(weights.read_text().replace("llama", "llamb"))
    broken = run("verify", "smollm2-135m")
    assert broken.returncode == 1 and "config.json does not match" in broken.stderr
    unknown = run("prepare", "gpt-17")
    assert unknown.returncode == 2 and "unknown local model" in unknown.stderr


def test_an_engine_that_fails_to_start_is_a_prompt_clear_error(tmp_path):
    from budgetflow.llm import ServerError, VLLMServer, prepare

    start = time.monotonic()
    with pytest.raises(ServerError, match="unrecognized arguments: --no-such-flag"):
        VLLMServer(prepare("smollm2-135m"), "broken", device="cpu", extra_args=["--no-such-flag"],
                   log_dir=tmp_path).start()
    assert time.monotonic() - start < 120
    with pytest.raises(ServerError, match="not a prepared model"):
        VLLMServer(tmp_path, "nothing", device="cpu").start()
