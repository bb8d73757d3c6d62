"""`budgetflow run` refuses bad input in one line that names the option, exit 2, before it creates, writes or spends
anything: no run directory, no ledger, nothing sent to a model."""

from __future__ import annotations

import json

import pytest

from .conftest import cli, connected, one_error_line

TASK = {"kind": "code", "id": "add", "entry_point": "add", "prompt": "def add(a, b):\n    return",
        "visible_tests": ["assert add(1, 2) == 3"], "hidden_tests": "assert add(5, 5) == 10\n"}


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps(TASK) + "\n")
    return path


def refused(workdir, *args: str, env: dict | None = None) -> str:
    """Run `budgetflow run ARGS --out OUT` from an empty directory; it must refuse and leave nothing behind."""
    out = workdir / "out"
    proc = cli("run", *args, "--out", str(out), cwd=workdir, env=env)
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc)
    assert list(workdir.iterdir()) == [], "a refused run wrote something"
    return line


GOOD = ["--model", "vllm/smollm2-135m@http://127.0.0.1:9/v1", "--price-cpu-hour", "1"]


@pytest.mark.parametrize(("args", "words"), [
    (["--budget-usd", "-1"], ["--budget-usd", "more than 0", "got -1"]),
    (["--budget-usd", "0"], ["--budget-usd", "more than 0"]),
    (["--budget-usd", "nan"], ["--budget-usd", "finite"]),
    (["--budget-usd", "inf"], ["--budget-usd", "finite"]),
    (["--budget-usd", "five"], ["--budget-usd", "number"]),
    (["--budget-usd", "1", "--max-samples", "0"], ["--max-samples", "at least 1"]),
    (["--budget-usd", "1", "--temperature", "-1"], ["--temperature", "at least 0"]),
    (["--budget-usd", "1", "--concurrency", "0"], ["--concurrency", "at least 1"]),
    (["--budget-usd", "1", "--limit", "0"], ["--limit", "at least 1"]),
    (["--budget-usd", "1", "--policy", "greedy"], ["--policy", "equal, allocate"]),
    (["--budget-usd", "1", "--executor", "slurm"], ["--executor", "local, ray"]),
    (["--budget-usd", "1", "--sandbox", "chroot"], ["--sandbox", "process", "docker"]),
    (["--budget-usd", "1", "--strategy", "magic"], ["--strategy", "code:", "sample", "math:", "majority"]),
], ids=lambda v: " ".join(v) if isinstance(v, list) and v and v[0].startswith("--") else None)
def test_bad_option_values(workdir, source, args, words):
    line = refused(workdir, str(source), *GOOD, *args)
    for word in words:
        assert word in line


def test_a_missing_setting_and_a_pydantic_field_are_named(workdir, source):
    assert "--budget-usd" in refused(workdir, str(source), *GOOD)
    line = refused(workdir, str(source), *GOOD, "--budget-usd", "1", "--name", "x" * 81)  # run.json's limit
    assert "--name: String should have at most 80 characters" in line


def test_unknown_local_model_names_the_known_ones(workdir, source):
    line = refused(workdir, str(source), "--model", "local/nope", "--budget-usd", "1")
    assert "unknown local model 'nope'" in line and "local/smollm2-135m" in line


def test_unpriced_model_names_the_price_options(workdir, source):
    line = refused(workdir, str(source), "--model", "vllm/mystery@http://127.0.0.1:9/v1", "--budget-usd", "1")
    assert "no price" in line and "--price-cpu-hour" in line and "--prices" in line


def test_missing_api_key_is_found_before_anything_is_sent(workdir, source, listener):
    base = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"  # where a call would go: nothing may arrive
    line = refused(workdir, str(source), "--model", "openai/gpt-4o-mini", "--budget-usd", "1",
                   env={"OPENAI_API_KEY": None, "OPENAI_BASE_URL": None, "OPENAI_API_BASE": base})
    assert "OPENAI_API_KEY" in line and "export" in line
    assert not connected(listener)


def test_unreachable_vllm_server_names_its_url(workdir, source, closed_port):
    url = f"http://127.0.0.1:{closed_port}/v1"
    line = refused(workdir, str(source), "--model", f"vllm/smollm2-135m@{url}", "--price-cpu-hour", "1",
                   "--budget-usd", "1")
    assert f"cannot connect to the vLLM server at {url}" in line and "refused" in line


def test_unreachable_provider_base_url_names_it(workdir, source, closed_port):
    url = f"http://127.0.0.1:{closed_port}/v1"
    line = refused(workdir, str(source), "--model", "openai/gpt-4o-mini", "--budget-usd", "1",
                   env={"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": None, "OPENAI_API_BASE": url})
    assert f"cannot connect to the provider at {url}" in line and "OPENAI_API_BASE" in line


def test_a_reachable_provider_is_only_connected_to(listener, monkeypatch):
    """The probe of a configured base URL opens a TCP connection and sends nothing: it cannot be billed."""
    from budgetflow.llm import probe_model

    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    monkeypatch.setenv("OPENAI_API_BASE", url)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert probe_model("openai/gpt-4o-mini") == url
    conn, _ = listener.accept()
    conn.settimeout(2)
    assert conn.recv(1024) == b""  # closed without a byte
    conn.close()


def test_a_vllm_server_that_serves_another_model(workdir, source, smol_base_url):
    line = refused(workdir, str(source), "--model", f"vllm/llama-70b@{smol_base_url}", "--price-cpu-hour", "1",
                   "--budget-usd", "1")
    assert "serves smollm2-135m, not 'llama-70b'" in line and f"vllm/smollm2-135m@{smol_base_url}" in line


def test_resume_of_a_run_whose_model_is_gone_leaves_it_unchanged(tmp_path, workdir, source, closed_port):
    kept = tmp_path / "kept"
    kept.mkdir()
    model = f"vllm/smollm2-135m@http://127.0.0.1:{closed_port}/v1"
    (kept / "run.json").write_text(json.dumps({
        "source": str(source), "model": model, "budget_usd": 1.0, "name": "kept", "out": str(kept),
        "ledger": f"sqlite:///{kept / 'ledger.db'}", "prices": {"vllm/smollm2-135m": {"cpu_second": 0.001}}}))
    before = {p.name: p.read_bytes() for p in kept.iterdir()}
    proc = cli("run", "--resume", "--out", str(kept), cwd=workdir)
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "cannot connect" in line and f"budgetflow run --resume --out {kept}" in line
    assert {p.name: p.read_bytes() for p in kept.iterdir()} == before and list(workdir.iterdir()) == []


def test_a_provider_that_fails_after_the_checks_leaves_a_run_to_resume(tmp_path, workdir, source, listener):
    """Where only the calls can tell (here a fault: the endpoint accepts connections and drops them), the run is
    recorded, and its summary says what failed and how to finish it."""
    import threading

    stop = threading.Event()

    def drop_every_connection() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.close()

    dropper = threading.Thread(target=drop_every_connection, daemon=True)
    dropper.start()
    out = tmp_path / "dropped"
    try:
        proc = cli("run", str(source), "--model", "openai/gpt-4o-mini", "--budget-usd", "0.05", "--out", str(out),
                   "--no-report", cwd=workdir, env={"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": None,
                   "OPENAI_API_BASE": f"http://127.0.0.1:{listener.getsockname()[1]}/v1"})
    finally:
        stop.set()
        dropper.join()
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert "1 task(s) ended in an error, e.g. LLMError: openai/gpt-4o-mini" in text
    assert f"budgetflow run --resume --retry-errors --out {out}" in text and "ledger OK" in text
