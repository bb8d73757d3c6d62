"""Kill a real run with SIGKILL mid-way, resume it, and prove from results.jsonl and the ledger that no task was lost,
none was done twice, nothing was charged twice and the cap held over both attempts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from budgetflow import Ledger
from tests.conftest import REPO
from tests.runs.conftest import PRICE, SMALL, bf_run, results

TASKS = 5
CAP = 0.03


def test_sigkill_then_resume_finishes_the_run_without_losing_or_repeating_a_task(smol_model, tmp_path):
    out = tmp_path / "killed"
    args = ["humaneval", "--limit", str(TASKS), "--model", smol_model, *PRICE, "--budget-usd", str(CAP), *SMALL,
            "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "budgetflow", "run", *args], cwd=REPO, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    try:
        deadline = time.monotonic() + 240
        while len(results(out)) < 1 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        time.sleep(0.7)  # well into the next task: its account is open, a call is likely in flight
        assert proc.poll() is None, f"the run ended before it could be killed:\n{proc.stdout.read()[-3000:]}"
        os.killpg(proc.pid, signal.SIGKILL)  # the whole run, at once, no clean-up of any kind
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    first = results(out)
    assert 1 <= len(first) < TASKS

    url = json.loads((out / "run.json").read_text())["ledger"]
    with Ledger(url, create=False, recover=False) as ledger:  # look, but do not settle anything
        before = {b.name: b for b in ledger.accounts()}
    finished = {r["id"]: before[r["account"]].committed for r in first}
    in_flight = [n for n, b in before.items() if b.parent == "killed" and n.removeprefix("killed/task/") not in finished]
    open_holds = before["killed"].reserved.usd

    resumed = bf_run("--resume", "--out", str(out))
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    if open_holds:
        assert "settled" in resumed.stderr  # the killed attempt's reservations were charged as reserved

    lines = results(out)
    ids = [r["id"] for r in lines]
    assert sorted(ids) == sorted(f"HumanEval/{i}" for i in range(TASKS)) and len(ids) == len(set(ids))
    assert lines[:len(first)] == first  # what was done before the kill is untouched
    assert any(r["resumed"] for r in lines) == bool(in_flight)

    with Ledger(url, create=False) as ledger:
        assert ledger.verify().ok
        after = {b.name: b for b in ledger.accounts()}
        run = after["killed"]
        assert run.committed.usd <= CAP and run.reserved.usd == 0  # one cap over both attempts
        for tid, spent in finished.items():  # finished tasks were not touched again
            assert after[f"killed/task/{tid}"].committed == spent
        # one account per task: the in-flight task's account was reopened, not recreated
        tasks = [n for n, b in after.items() if b.parent == "killed"]
        assert sorted(tasks) == sorted(f"killed/task/HumanEval/{i}" for i in range(TASKS))
        for name in in_flight:
            assert after[name].budget == before[name].budget  # same cap: it covers both attempts
            assert after[name].committed.usd >= before[name].committed.usd + before[name].reserved.usd - 1e-9
        assert abs(sum(after[n].committed.usd for n in tasks) - run.committed.usd) < 1e-9
