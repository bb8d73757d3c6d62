"""Tamper detection: edit, delete or reorder journal rows with plain SQL; verify names the first bad entry."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from budgetflow import Budget, Ledger

from ..conftest import run_cli


def _build(url: str) -> None:
    ledger = Ledger(url)
    run = ledger.root("run", Budget(usd=1))
    task = run.child("task")
    for i in range(6):
        task.reserve(usd=0.05, calls=1).commit(usd=0.005 * (i + 1), calls=1)
    task.reserve(usd=0.02).release()
    assert ledger.verify().ok
    ledger.close()


def _sqlite(url: str, *statements: str) -> None:
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    for sql in statements:
        conn.execute(sql)
    conn.commit()
    conn.close()


TAMPERS = {
    "edit amount": (["UPDATE bf_entry SET payload = '{\"calls\":1,\"usd\":1000}' WHERE seq = 6"], 6, "edited"),
    "edit note": (["UPDATE bf_entry SET note = 'nothing to see' WHERE seq = 4"], 4, "edited"),
    "delete middle": (["DELETE FROM bf_entry WHERE seq = 7"], 7, "missing"),
    "reorder": ([
        "UPDATE bf_entry SET seq = -1 WHERE seq = 5",
        "UPDATE bf_entry SET seq = 5 WHERE seq = 6",
        "UPDATE bf_entry SET seq = 6 WHERE seq = -1",
    ], 5, "does not follow"),
    "delete tail": (["DELETE FROM bf_entry WHERE seq = (SELECT MAX(seq) FROM bf_entry)"], 16, "deleted"),
    "edit balance": (["UPDATE bf_account SET committed_usd = 0 WHERE name = 'task'"], None, "balance differs"),
}


@pytest.mark.parametrize("name", list(TAMPERS))
def test_sqlite_tampering_is_detected(sqlite_url, name):
    statements, bad_seq, words = TAMPERS[name]
    _build(sqlite_url)
    _sqlite(sqlite_url, *statements)
    report = Ledger(sqlite_url, recover=False).verify()
    assert not report.ok and words in report.problems[0]
    assert report.first_bad_seq == bad_seq
    cli = run_cli("ledger", "verify", "--db", sqlite_url)
    assert cli.returncode == 1
    if bad_seq is not None:
        assert f"#{bad_seq}" in cli.stderr


def test_rehashing_an_edited_entry_still_breaks_the_chain(sqlite_url):
    """An attacker who edits entry 6 and recomputes its hash is caught at entry 7."""
    from budgetflow.budget._chain import entry_hash

    _build(sqlite_url)
    conn = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    conn.row_factory = sqlite3.Row
    row = dict(conn.execute("SELECT * FROM bf_entry WHERE seq = 6").fetchone())
    row["payload"] = '{"calls":1,"usd":1}'
    new_hash = entry_hash(prev_hash=row["prev_hash"], seq=6, ts_us=row["ts_us"], kind=row["kind"],
                          account_id=row["account_id"], reservation_id=row["reservation_id"], owner=row["owner"],
                          payload=row["payload"], note=row["note"])
    conn.execute("UPDATE bf_entry SET payload = ?, hash = ? WHERE seq = 6", (row["payload"], new_hash))
    conn.commit()
    conn.close()
    report = Ledger(sqlite_url, recover=False).verify()
    assert not report.ok and report.first_bad_seq == 7


def test_postgres_tampering_is_detected(pg_url):
    _build(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE bf_entry SET payload = '{\"calls\":1,\"usd\":1}' WHERE seq = 9")
    cli = run_cli("ledger", "verify", "--db", pg_url)
    assert cli.returncode == 1 and "#9" in cli.stderr
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DELETE FROM bf_entry WHERE seq = 3")
    report = Ledger(pg_url, recover=False).verify()
    assert not report.ok and report.first_bad_seq == 3  # the first bad entry is now the earlier deletion


def test_untouched_ledger_verifies(sqlite_url):
    _build(sqlite_url)
    cli = run_cli("ledger", "verify", "--db", sqlite_url)
    assert cli.returncode == 0 and "ledger OK: 16 entries" in cli.stdout
