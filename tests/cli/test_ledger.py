"""`budgetflow ledger ...` on real SQLite ledgers: summaries and journals that never cut a number, exports at full
precision, and one-line refusals for a ledger that is not there (never created by looking)."""

from __future__ import annotations

import csv
import io
import json

from budgetflow import Budget, Ledger

from .conftest import cli, one_error_line


def _ledger(url: str) -> None:
    ledger = Ledger(url)
    task = ledger.root("run", Budget(usd=1, calls=5)).child("task-1")
    task.reserve(usd=0.2, calls=1, output_tokens=100).commit(usd=0.05, calls=1, output_tokens=40)
    task.reserve(usd=0.1)  # still held
    ledger._lease.release()  # keep it open but not "alive", so show sees it as-is (show never recovers)
    ledger.close()


def test_show_summary_and_entries(sqlite_url, workdir):
    _ledger(sqlite_url)
    summary = cli("ledger", "show", "--db", sqlite_url, cwd=workdir)
    assert summary.returncode == 0, summary.stderr
    assert "task-1" in summary.stdout and "$0.05" in summary.stdout and "$0.1" in summary.stdout
    entries = cli("ledger", "show", "--db", sqlite_url, "--entries", "--account", "task-1", cwd=workdir)
    assert entries.returncode == 0
    assert entries.stdout.count("reserve") == 2 and "commit" in entries.stdout
    missing = cli("ledger", "show", "--db", sqlite_url, "--entries", "--account", "nope", cwd=workdir)
    assert missing.returncode == 2 and "no account named 'nope'" in one_error_line(missing)


def test_show_never_cuts_a_number_when_piped(tmp_path, workdir):
    """Piped with no COLUMNS, rich would lay tables out in 80 columns and cut cells to '…'."""
    url = f"sqlite:///{tmp_path / 'wide.db'}"
    ledger = Ledger(url)
    caps = Budget(usd=123456.789012, input_tokens=987654321, output_tokens=123456789, cpu_seconds=86400.123456,
                  gpu_seconds=7200.5, wall_seconds=99999.25, calls=1234567)
    task = ledger.root("a-rather-long-run-name-for-a-nightly-batch", caps).child("task/HumanEval/163-with-a-suffix")
    task.reserve(usd=1234.567891, input_tokens=12345678, output_tokens=2345678, cpu_seconds=3600.654321,
                 calls=12345).commit(usd=1234.567891, input_tokens=12345678, output_tokens=2345678,
                                     cpu_seconds=3600.654321, calls=12345)
    ledger.close()
    for args in ([], ["--entries"]):
        proc = cli("ledger", "show", "--db", url, *args, cwd=workdir, env={"COLUMNS": None})
        assert proc.returncode == 0, proc.stderr
        assert "…" not in proc.stdout
        for number in ("$1,234.567891", "$123,456.789012", "12,345,678", "987,654,321", "3,600.654321", "1,234,567",
                       "task/HumanEval/163-with-a-suffix") if not args else (
                "usd=1234.567891", "input_tokens=12345678", "cpu_seconds=3600.654321", "cap_usd=123456.789012"):
            assert number in proc.stdout, (number, proc.stdout)


def test_export_json_csv_and_summary(sqlite_url, tmp_path, workdir):
    _ledger(sqlite_url)
    as_json = cli("ledger", "export", "--db", sqlite_url, "-f", "json", cwd=workdir)
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [r["kind"] for r in rows] == ["open", "open", "reserve", "commit", "reserve"]
    assert rows[3]["amounts"] == {"calls": 1, "output_tokens": 40, "usd": 0.05}
    out = tmp_path / "ledger.csv"
    assert cli("ledger", "export", "--db", sqlite_url, "-f", "csv", "-o", str(out), cwd=workdir).returncode == 0
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(table) == 5 and table[3]["usd"] == "0.05" and table[0]["cap_usd"] == "1.0"
    summary = json.loads(cli("ledger", "export", "--db", sqlite_url, "-f", "summary-json", cwd=workdir).stdout)
    task = next(a for a in summary if a["name"] == "task-1")
    assert task["parent"] == "run" and task["committed"]["usd"] == 0.05 and task["reserved"]["usd"] == 0.1
    bad = cli("ledger", "export", "--db", sqlite_url, "-f", "xml", cwd=workdir)
    assert bad.returncode == 2 and "unknown format 'xml'" in one_error_line(bad)


def test_a_missing_ledger_is_one_line_and_never_created(tmp_path, workdir):
    path = tmp_path / "absent.db"
    for command in ("show", "verify", "recover", "export"):
        proc = cli("ledger", command, "--db", str(path), cwd=workdir)
        assert proc.returncode == 2 and "no budgetflow ledger" in one_error_line(proc) and "--db" in proc.stderr
    assert not path.exists() and list(workdir.iterdir()) == []
    default = cli("ledger", "show", cwd=workdir, env={"BUDGETFLOW_DB": None})  # sqlite:///budgetflow.db, here
    assert default.returncode == 2 and "no budgetflow ledger" in one_error_line(default)
    assert list(workdir.iterdir()) == []


def test_a_bad_ledger_url_is_one_line(tmp_path, workdir, closed_port):
    bad_url = cli("ledger", "show", "--db", "mysql://x@127.0.0.1/y", cwd=workdir)
    assert bad_url.returncode == 2 and "cannot open ledger" in one_error_line(bad_url)
    down = cli("ledger", "verify", "--db", f"postgresql://me:secret@127.0.0.1:{closed_port}/db", cwd=workdir)
    line = one_error_line(down)
    assert down.returncode == 2 and "Connection refused" in line and "secret" not in line and "--db" in line
    junk = tmp_path / "junk.db"
    junk.write_text("not a database")
    proc = cli("ledger", "recover", "--db", str(junk), cwd=workdir)
    assert proc.returncode == 2 and "not a database" in one_error_line(proc)
