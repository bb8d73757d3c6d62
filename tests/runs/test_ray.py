"""`--executor ray`: a real Ray cluster (a head and one worker node) and a real PostgreSQL ledger shared by every
worker; the budget runs out mid-run and the cap holds across workers.

The cluster lives in network and PID namespaces the test creates (ray_netns.py): only `lo` exists there, so Ray
keeps every address on 127.0.0.1, and the session's vLLM and PostgreSQL servers are bridged in over Unix sockets."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from urllib.parse import urlsplit

import pytest

from budgetflow import Ledger
from tests.conftest import REPO
from tests.runs.bridge import unix_to_tcp
from tests.runs.conftest import PRICE, results

TASKS = 4
CAP = 0.006  # $3.60 per engine-hour: 6 engine-seconds for the whole run, whatever the machine's speed; with up to
# 20 samples per task (SmolLM2 rarely solves these), every task's $0.0015 share runs out before its samples do


@pytest.mark.postgres
@pytest.mark.slow
def test_ray_cluster_run_on_a_shared_postgres_ledger_holds_the_cap(smol_base_url, smol_model, pg_url, tmp_path):
    try:
        import ray  # noqa: F401
    except ImportError:
        pytest.fail("Ray is not installed: pip install 'budgetflow[distributed]' (ray[default])")
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is needed to give the Ray cluster its own loopback-only network")
    vllm_port = urlsplit(smol_base_url).port
    pg_port = urlsplit(pg_url).port
    bridge_dir = tempfile.mkdtemp(prefix="bfbr", dir="/tmp")
    bridges = [unix_to_tcp(f"{bridge_dir}/{p}.sock", p) for p in (vllm_port, pg_port)]
    out = tmp_path / "ray-run"
    try:
        proc = subprocess.run(
            ["unshare", "--net", "--pid", "--fork", "--mount-proc", sys.executable, "-m", "tests.runs.ray_netns",
             bridge_dir, f"{vllm_port},{pg_port}", "--",
             "humaneval", "--limit", str(TASKS), "--model", smol_model, *PRICE, "--budget-usd", str(CAP),
             "--max-samples", "20", "--max-tokens", "32", "--ledger", pg_url, "-j", "2", "--out", str(out)],
            cwd=REPO, capture_output=True, text=True, timeout=420)
    finally:
        for b in bridges:
            b.close()
        shutil.rmtree(bridge_dir, ignore_errors=True)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    assert "2 worker(s) on 2 node(s)" in proc.stdout

    lines = results(out)
    assert sorted(r["id"] for r in lines) == sorted(f"HumanEval/{i}" for i in range(TASKS))  # nothing lost
    assert all(r["reason"] in ("solved", "exhausted", "budget") and not r["error"] for r in lines)
    assert any(r["reason"] == "budget" for r in lines)  # the money ran out mid-run
    workers = {r["worker"].split(":")[1] for r in lines}
    assert all(r["worker"].startswith("ray:") for r in lines) and len(workers) == 2  # both nodes worked

    with Ledger(pg_url, create=False) as ledger:
        assert ledger.verify().ok
        accounts = {b.name: b for b in ledger.accounts()}
        run = accounts["ray-run"]
        assert run.budget.usd == CAP and run.committed.usd <= CAP and run.reserved.usd == 0
        assert run.committed.usd > 0
        for r in lines:
            acct = accounts[r["account"]]
            assert acct.parent == "ray-run" and acct.committed.usd <= acct.budget.usd
            assert r["spend"].get("total", {}).get("usd", 0.0) == pytest.approx(acct.committed.usd, abs=1e-9)
    config = json.loads((out / "run.json").read_text())
    assert config["executor"] == "ray" and config["ledger"] == pg_url
