"""Shared fixtures: real SQLite files, a real PostgreSQL server, the real vLLM server (SmolLM2-135M on the CPU,
--enforce-eager) and the real process sandbox, each started once for the whole test session."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from budgetflow import Budget, Ledger, PriceBook

REPO = Path(__file__).resolve().parent.parent

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server on loopback (or the one named by BUDGETFLOW_TEST_PG_URL)."""
    url = os.environ.get("BUDGETFLOW_TEST_PG_URL")
    if url:
        yield url
        return
    from budgetflow.devtools import TemporaryPostgres

    with TemporaryPostgres() as pg:
        yield pg.url


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = pg_server.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request) -> str:
    """Run a test against both ledger backends."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real `budgetflow` command line in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "budgetflow", *args],
        capture_output=True, text=True, timeout=timeout, cwd=REPO,
        env={**os.environ, "COLUMNS": "200"},
    )


PRICE_PER_CPU_SECOND = 0.001  # $3.60 per engine-hour: big enough that budgets bind in a few calls


@pytest.fixture(scope="session")
def smol_server():
    try:
        import vllm  # noqa: F401
    except ImportError:
        pytest.fail("vLLM is not installed: the model-layer tests need the real engine (make test installs it)")
    from budgetflow.llm import LOCAL_MODELS, VLLMServer, prepare

    # served as get_llm serves it: with the flags its tool calling needs (named / required tool choice)
    with VLLMServer(prepare("smollm2-135m"), "smollm2-135m", device="cpu", max_model_len=2048,
                    extra_args=LOCAL_MODELS["smollm2-135m"].server_args) as server:
        yield server


@pytest.fixture(scope="session")
def qwen_server():
    """Qwen2.5-Coder-1.5B on vLLM (CPU), served with its tool-call parser: the model that picks tools itself (tool
    choice "auto"), which a ReAct agent needs. Started only by the (slower) tests that use it."""
    from budgetflow.llm import LOCAL_MODELS, VLLMServer, prepare

    with VLLMServer(prepare("qwen2.5-coder-1.5b"), "qwen2.5-coder-1.5b", device="cpu", max_model_len=4096,
                    extra_args=LOCAL_MODELS["qwen2.5-coder-1.5b"].server_args) as server:
        yield server


@pytest.fixture(scope="session")
def qwen(qwen_server, prices):
    from budgetflow.llm import VLLMEngine

    eng = VLLMEngine("local/qwen2.5-coder-1.5b", qwen_server.base_url, "qwen2.5-coder-1.5b", prices=prices,
                     server=qwen_server, device="cpu", auto_tools=True)
    with Ledger("sqlite://") as led:
        eng.calibrate(led.root("qwen-calibration", Budget()))
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def prices() -> PriceBook:
    book = PriceBook()
    book.set("local/smollm2-135m", cpu_second=PRICE_PER_CPU_SECOND)
    book.set("openai/smollm2-135m", input_per_million=1.0, output_per_million=2.0)
    # Qwen2.5-Coder-1.5B (auto tool choice: the ReAct agent tests): by engine time locally, by tokens through the
    # OpenAI-compatible path (LangChain's own provider class under BudgetMiddleware)
    book.set("local/qwen2.5-coder-1.5b", cpu_second=PRICE_PER_CPU_SECOND)
    book.set("openai/qwen2.5-coder-1.5b", input_per_million=1.0, output_per_million=2.0)
    return book


@pytest.fixture(scope="session")
def engine(smol_server, prices):
    from budgetflow.llm import VLLMEngine

    eng = VLLMEngine("local/smollm2-135m", smol_server.base_url, "smollm2-135m", prices=prices,
                     server=smol_server, device="cpu", auto_tools=False)
    with Ledger("sqlite://") as led:  # measure its speed up front, paid by an account of the session's own
        eng.calibrate(led.root("engine-calibration", Budget()))
    yield eng
    eng.close()


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(tmp_path / "ledger.db")
    yield led
    led.close()


@pytest.fixture(scope="session")
def sandbox():
    from budgetflow.sandbox import get_sandbox

    return get_sandbox("process")
