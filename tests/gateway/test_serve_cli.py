"""`budgetflow keys` and `budgetflow serve` as a user runs them: real subprocesses, a real ledger file, the real vLLM
server behind the gateway (named vllm/SERVED@URL), a SIGTERM that lets the call in flight settle."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx

from budgetflow import Ledger
from tests.conftest import REPO, run_cli


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_keys_create_list_revoke(tmp_path):
    db = f"sqlite:///{tmp_path / 'gw.db'}"
    refused = run_cli("keys", "create", "--db", db, "--account", "team-a/agent-1")
    assert refused.returncode == 2 and "--budget-usd" in refused.stderr  # a key never spends uncapped
    made = run_cli("keys", "create", "--db", db, "--account", "team-a/agent-1", "--budget-usd", "5",
                   "--parent-budget-usd", "20", "--label", "ci bot", "--expires", "30")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("bfk_") and "shown once" in made.stderr
    with Ledger(db) as led:  # only the hash is stored
        assert key.split("_")[2] not in (tmp_path / "gw.db").read_bytes().decode("latin-1")
        assert led.account("team-a/agent-1", parent="team-a").balance().budget.usd == 5
        assert led.account("team-a").balance().budget.usd == 20
    listed = run_cli("keys", "list", "--db", db)
    assert listed.returncode == 0 and key.split("_")[1] in listed.stdout and "ci bot" in listed.stdout
    shown = run_cli("ledger", "show", "--db", db)
    assert "API keys" in shown.stdout and "team-a/agent-1" in shown.stdout
    revoked = run_cli("keys", "revoke", key.split("_")[1], "--db", db)
    assert revoked.returncode == 0 and "revoked" in run_cli("keys", "list", "--db", db).stdout
    assert run_cli("keys", "revoke", "nope", "--db", db).returncode == 2
    assert run_cli("serve", "--db", str(tmp_path / "none.db"), "--model", "local/smollm2-135m").returncode == 2


def test_serve_answers_then_drains_on_sigterm(tmp_path, smol_server):
    """A SIGTERM mid-call: the call finishes (drain), its reservation is settled, the ledger verifies."""
    db = f"sqlite:///{tmp_path / 'gw.db'}"
    key = run_cli("keys", "create", "--db", db, "--account", "svc", "--budget-usd", "1").stdout.strip()
    port = _free_port()
    model = f"vllm/smollm2-135m@{smol_server.base_url}"
    proc = subprocess.Popen([sys.executable, "-m", "budgetflow", "serve", "--db", db, "--model", model,
                             "--port", str(port), "--price-cpu-hour", "3.6", "--drain", "60"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise AssertionError(proc.stderr.read() if proc.poll() is not None else "the gateway did not start")
        models = httpx.get(f"{base}/v1/models", headers={"authorization": f"Bearer {key}"}).json()
        assert [m["id"] for m in models["data"]] == [model]
        result: dict = {}

        def call() -> None:
            result["r"] = httpx.post(f"{base}/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                                     json={"model": model, "messages": [{"role": "user", "content": "Tell a story."}],
                                           "max_tokens": 60, "min_tokens": 60}, timeout=300)

        worker = threading.Thread(target=call)
        worker.start()
        time.sleep(1.5)  # in flight (the first call also measures the engine)
        proc.send_signal(signal.SIGTERM)
        worker.join(300)
        assert result["r"].status_code == 200, result["r"].text
        assert proc.wait(120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    with Ledger(db) as led:
        bal = led.account("svc").balance()
        # the call's 60 tokens (plus the engine's first measurement, paid by the key that needed it)
        assert bal.committed.output_tokens >= 60 and not any(bal.reserved_units.values())
        assert led.verify().ok


def test_serve_refuses_a_model_it_cannot_serve_before_listening(tmp_path):
    db = f"sqlite:///{tmp_path / 'gw.db'}"
    assert run_cli("keys", "create", "--db", db, "--account", "a", "--budget-usd", "1").returncode == 0
    port = _free_port()
    cases = {
        "vllm/nothing@http://127.0.0.1:%d/v1" % port: "",  # nobody listens there
        "local/no-such-model": "",
        "some-provider/unpriced-model-xyz": "price",
    }
    for model, words in cases.items():
        r = run_cli("serve", "--db", db, "--model", model, "--port", str(port), "--price-cpu-hour", "1",
                    timeout=60)
        assert r.returncode == 2 and r.stderr.startswith("error:"), (model, r.stderr)
        assert words in r.stderr.lower()
