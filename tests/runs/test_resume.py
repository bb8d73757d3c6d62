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
            "-j", "1", "--out", str(out)]  # one task at a time: the kill lands between finished tasks
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


def _cli_in(cwd, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "budgetflow", "run", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=env)


def test_resume_from_another_directory_spends_on_the_same_ledger(smol_model, tmp_path):
    """issue 11 class 6: a relative --ledger was stored as given, so `--resume` from another working directory
    opened a fresh ledger and re-created the run's account with the full cap (1.61x the cap over both attempts)."""
    first, other = tmp_path / "first", tmp_path / "other"
    first.mkdir()
    other.mkdir()
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"kind": "code", "id": "add", "entry_point": "add",
                                 "prompt": 'def add(a, b):\n    """Return a + b."""\n    return',
                                 "visible_tests": ["assert add(1, 2) == 3"]}) + "\n")
    out = tmp_path / "out"
    run = _cli_in(first, str(tasks), "--model", smol_model, *PRICE, "--budget-usd", "0.01", *SMALL,
                  "--ledger", "sqlite:///rel/ledger.db", "--out", str(out))
    assert run.returncode == 0, run.stderr[-3000:]
    saved = json.loads((out / "run.json").read_text())["ledger"]
    assert saved == f"sqlite:///{first / 'rel' / 'ledger.db'}"  # stored resolved
    again = _cli_in(other, "--resume", "--out", str(out))
    assert again.returncode == 0, again.stderr[-3000:]
    assert not (other / "rel").exists()  # no second ledger, no second cap
    with Ledger(saved, create=False) as ledger:
        assert ledger.account("out").spent().usd <= 0.01 and ledger.verify().ok


def test_resume_refuses_a_ledger_without_the_run(smol_model, tmp_path):
    """issue 11 class 6: resuming into a ledger that lacks the run's account would start over with a fresh cap."""
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"kind": "math", "id": "m", "question": "1+1?", "answer": 2}) + "\n")
    out = tmp_path / "out"
    run = _cli_in(tmp_path, str(tasks), "--model", smol_model, *PRICE, "--budget-usd", "0.01", *SMALL,
                  "--out", str(out))
    assert run.returncode == 0, run.stderr[-3000:]
    (out / "ledger.db").rename(tmp_path / "moved.db")
    for extra in ([], ["--ledger", f"sqlite:///{tmp_path / 'empty.db'}"]):
        again = _cli_in(tmp_path, "--resume", "--out", str(out), *extra)
        assert again.returncode != 0 and ("no budgetflow ledger" in again.stderr or "differ" in again.stderr
                                          or "has no account" in again.stderr), again.stderr[-2000:]
    assert not (out / "ledger.db").exists() and not (tmp_path / "empty.db").exists()
