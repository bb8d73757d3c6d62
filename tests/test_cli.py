"""The `budgetflow` CLI, run as a real subprocess."""

from __future__ import annotations

import csv
import io
import json

from budgetflow import Budget, Ledger

from .conftest import run_cli


def _ledger(url: str) -> None:
    ledger = Ledger(url)
    task = ledger.root("run", Budget(usd=1, calls=5)).child("task-1")
    task.reserve(usd=0.2, calls=1, output_tokens=100).commit(usd=0.05, calls=1, output_tokens=40)
    task.reserve(usd=0.1)  # still held
    ledger._lease.release()  # keep it open but not "alive", so show sees it as-is (show never recovers)
    ledger.close()


def test_help_teaches():
    top = run_cli("--help")
    assert top.returncode == 0 and "never exceeded" in top.stdout and "ledger" in top.stdout
    sub = run_cli("ledger", "--help")
    for command in ("show", "export", "verify", "recover"):
        assert command in sub.stdout
    assert "postgresql://" in sub.stdout


def test_show_summary_and_entries(sqlite_url):
    _ledger(sqlite_url)
    summary = run_cli("ledger", "show", "--db", sqlite_url)
    assert summary.returncode == 0, summary.stderr
    assert "task-1" in summary.stdout and "$0.05" in summary.stdout and "$0.1" in summary.stdout
    entries = run_cli("ledger", "show", "--db", sqlite_url, "--entries", "--account", "task-1")
    assert entries.returncode == 0
    assert entries.stdout.count("reserve") == 2 and "commit" in entries.stdout
    missing = run_cli("ledger", "show", "--db", sqlite_url, "--entries", "--account", "nope")
    assert missing.returncode == 2 and "no account named 'nope'" in missing.stderr


def test_export_json_csv_and_summary(sqlite_url, tmp_path):
    _ledger(sqlite_url)
    as_json = run_cli("ledger", "export", "--db", sqlite_url, "-f", "json")
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [r["kind"] for r in rows] == ["open", "open", "reserve", "commit", "reserve"]
    assert rows[3]["amounts"] == {"calls": 1, "output_tokens": 40, "usd": 0.05}
    out = tmp_path / "ledger.csv"
    assert run_cli("ledger", "export", "--db", sqlite_url, "-f", "csv", "-o", str(out)).returncode == 0
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(table) == 5 and table[3]["usd"] == "0.05" and table[0]["cap_usd"] == "1.0"
    summary = json.loads(run_cli("ledger", "export", "--db", sqlite_url, "-f", "summary-json").stdout)
    task = next(a for a in summary if a["name"] == "task-1")
    assert task["parent"] == "run" and task["committed"]["usd"] == 0.05 and task["reserved"]["usd"] == 0.1
    bad = run_cli("ledger", "export", "--db", sqlite_url, "-f", "xml")
    assert bad.returncode == 2 and "unknown format" in bad.stderr


def test_missing_ledger_is_a_clear_error_and_not_created(tmp_path):
    path = tmp_path / "absent.db"
    result = run_cli("ledger", "verify", "--db", str(path))
    assert result.returncode == 2 and "no budgetflow ledger" in result.stderr
    assert not path.exists()
    bad_url = run_cli("ledger", "show", "--db", "mysql://x@127.0.0.1/y")
    assert bad_url.returncode == 2 and "cannot open ledger" in bad_url.stderr


def test_prices_show():
    ok = run_cli("prices", "show", "gpt-4o-mini")
    assert ok.returncode == 0 and "litellm" in ok.stdout and "0.1500" in ok.stdout
    unpriced = run_cli("prices", "show", "local/qwen2.5-coder-1.5b")
    assert unpriced.returncode == 1 and "has no price" in unpriced.stderr
