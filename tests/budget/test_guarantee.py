"""The ledger's invariant — committed + held ≤ cap for every account, at every moment — attacked directly.

Each test names the class of issue 11 it covers. The randomized test drives reserve / extend / commit (within and
beyond the hold) / release / crash / reopen on a nested account tree on both backends and checks the invariant
after every step.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budgetflow import Budget, BudgetExceeded, Ledger
from budgetflow.budget import LedgerClosed, ReservationClosed
from budgetflow.budget._limits import DIMENSIONS

from ..conftest import REPO


def _holder(url: str, mode: str, *extra: str) -> tuple[subprocess.Popen, list[str]]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.budget.holder", url, mode, *extra], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("READY"), proc.stderr.read()[-3000:]
    return proc, line.split()[1:]


def _sigkill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def assert_invariant(ledger: Ledger) -> None:
    for bal in ledger.accounts():
        for dim in DIMENSIONS:
            cap = bal.cap_units[dim]
            assert bal.reserved_units[dim] >= 0 and bal.committed_units[dim] >= 0
            assert cap is None or bal.committed_units[dim] + bal.reserved_units[dim] <= cap, (bal.name, dim)


# ---------------------------------------------------------------- class 1: the database itself refuses


def test_the_tables_refuse_a_balance_past_its_cap(ledger_url):
    """issue 11 class 1 (by construction): a CHECK constraint refuses any statement that would store committed +
    reserved > cap, whoever runs it."""
    ledger = Ledger(ledger_url)
    ledger.root("run", Budget(usd=1)).reserve(usd=0.5).commit(usd=0.5)
    ledger.close()
    sql = "UPDATE bf_account SET committed_usd = committed_usd + 600000000 WHERE name = 'run'"
    if ledger_url.startswith("sqlite"):
        conn = sqlite3.connect(ledger_url.removeprefix("sqlite:///"))
        with pytest.raises(sqlite3.IntegrityError, match="bf_within_cap_usd"):
            conn.execute(sql)
        conn.close()
    else:
        with psycopg.connect(ledger_url, autocommit=True) as conn:
            with pytest.raises(psycopg.errors.CheckViolation):
                conn.execute(sql)


def test_verify_reports_an_old_style_overrun_commit_as_a_cap_violation(sqlite_url):
    """issue 11 class 1: a journal whose commit charged more than its reservation (as main wrote them, with a note)
    must not verify as OK. Rebuilt here with a correctly re-hashed chain, so only the cap check can catch it."""
    from budgetflow.budget._chain import entry_hash

    ledger = Ledger(sqlite_url)
    ledger.root("run", Budget(usd=1)).reserve(usd=0.1).commit(usd=0.1)
    ledger.close()
    conn = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    rows = conn.execute("SELECT seq, ts_us, kind, account_id, reservation_id, owner, payload, note FROM bf_entry "
                        "ORDER BY seq").fetchall()
    prev = "0" * 64
    for seq, ts, kind, acc, res, owner, payload, note in rows:
        if kind == "commit":
            payload = '{"usd":150000000}'  # charged $0.15 on a $0.10 hold
        digest = entry_hash(prev_hash=prev, seq=seq, ts_us=ts, kind=kind, account_id=acc, reservation_id=res,
                            owner=owner, payload=payload, note=note)
        conn.execute("UPDATE bf_entry SET payload = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                     (payload, prev, digest, seq))
        prev = digest
    conn.execute("UPDATE bf_chain_head SET hash = ?", (prev,))
    conn.execute("UPDATE bf_account SET committed_usd = 150000000 WHERE name = 'run'")
    conn.commit()
    conn.close()
    report = Ledger(sqlite_url, recover=False).verify()
    assert not report.ok and not report.problems
    assert "charges more than its reservation held" in report.violations[0]


# ---------------------------------------------------------------- class 10: leases and open reservations


def test_a_symlinked_path_never_recovers_a_live_owner(tmp_path):
    """issue 11 class 10: the SQLite lease was keyed by the path string, so opening the same file through a symlink
    saw a live holder as dead and 'recovered' its reservations."""
    real = tmp_path / "real" / "ledger.db"
    real.parent.mkdir()
    Ledger(real).close()
    (tmp_path / "link.db").symlink_to(real)
    proc, held = _holder(f"sqlite:///{tmp_path / 'link.db'}", "hold")
    try:
        other = Ledger(f"sqlite:///{real}")
        assert other.recovered == []
        assert other.account("task").held().usd == pytest.approx(0.18)
        other.close()
    finally:
        _sigkill(proc.pid)
        proc.wait()
    again = Ledger(real)
    assert sorted(r.reservation_id for r in again.recovered) == sorted(held)
    again.close()


def test_a_child_forked_without_exec_does_not_keep_a_dead_owners_lease(sqlite_url):
    """issue 11 class 10: the flock was inherited by a child forked without exec, so the owner's reservations were
    never recovered after the owner itself died (the budget stayed held forever)."""
    proc, ids = _holder(sqlite_url, "fork-hold")
    *held, child = ids
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        os.kill(int(child), 0)  # the forked child is still alive
        ledger = Ledger(sqlite_url)
        assert sorted(r.reservation_id for r in ledger.recovered) == sorted(held)
        assert ledger.verify().ok
        ledger.close()
    finally:
        _sigkill(int(child))


def test_a_closed_ledger_refuses_to_spend(ledger_url):
    """issue 11 class 10: after close() a Ledger kept reserving with no lease, so another process could recover
    (charge) reservations that were still in use — or the caller spent on a ledger nobody watched."""
    ledger = Ledger(ledger_url)
    acc = ledger.root("run", Budget(usd=1))
    r = acc.reserve(usd=0.1)
    ledger.close()
    with pytest.raises(LedgerClosed):
        acc.reserve(usd=0.1)
    with pytest.raises(LedgerClosed):
        r.commit(usd=0.05)
    again = Ledger(ledger_url, lease_ttl_s=1.0)
    # the closed ledger's open reservation is recoverable (it no longer holds a lease); charged once, in full
    if not again.recovered:
        time.sleep(1.2)
        again.recover()
    assert again.account("run").spent().usd == pytest.approx(0.1) and again.verify().ok
    again.close()


@pytest.mark.postgres
def test_a_dropped_lease_connection_does_not_make_a_live_owner_look_dead(pg_url):
    """issue 11 class 10: on PostgreSQL, a lease connection dropped by the server (idle timeout, restart) lost the
    advisory lock silently; the next open recovered the live process's reservations."""
    proc, held = _holder(pg_url, "hold", "4.0")  # a 4-second lease ttl, renewed every second
    try:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            killed = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                                  "AND pid <> pg_backend_pid()").fetchall()
            assert killed  # the holder's lease connection is gone
            other = Ledger(pg_url)
            assert other.recovered == []  # its heartbeat is fresh: it is alive
            assert other.account("task").held().usd == pytest.approx(0.18)
            deadline = time.monotonic() + 10
            while not conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()[0]:
                assert time.monotonic() < deadline, "the holder never took its lease again"
                time.sleep(0.2)
            time.sleep(4.5)  # past the ttl: only the re-taken lock keeps it alive now
            assert other.recover() == []
            other.close()
    finally:
        _sigkill(proc.pid)
        proc.wait()
    time.sleep(4.5)
    ledger = Ledger(pg_url)
    assert sorted(r.reservation_id for r in ledger.recovered) == sorted(held)
    ledger.close()


@pytest.mark.parametrize("edit", [
    "UPDATE bf_open_reservation SET amounts = '{\"usd\":1}'",
    "UPDATE bf_open_reservation SET owner = 'someone-else'",
])
def test_verify_compares_open_reservations_in_full(sqlite_url, edit):
    """issue 11 class 10: verify() compared only the ids of open reservations, so shrinking one (which frees budget
    on recovery) or re-assigning its owner (which lets another process recover it) went unnoticed."""
    ledger = Ledger(sqlite_url)
    ledger.root("run", Budget(usd=1)).reserve(usd=0.3)
    assert ledger.verify().ok
    conn = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    conn.execute(edit)
    conn.commit()
    conn.close()
    report = ledger.verify()
    assert not report.ok and "differ from the journal" in report.problems[0]
    ledger.close()


# ---------------------------------------------------------------- the invariant under random sequences

TREE = {  # name: (parent, caps)
    "root": (None, Budget(usd=1.0, calls=30)),
    "a": ("root", Budget(usd=0.5)),
    "b": ("root", None),
    "a1": ("a", Budget(calls=6)),
    "b1": ("b", Budget(usd=0.3, output_tokens=5000)),
}
ACCOUNTS = list(TREE)
amount = st.fixed_dictionaries({"usd": st.floats(0, 0.4), "calls": st.integers(0, 3),
                                "output_tokens": st.integers(0, 3000)})
op = st.one_of(
    st.tuples(st.just("reserve"), st.sampled_from(ACCOUNTS), amount, st.booleans()),
    st.tuples(st.just("extend"), st.integers(0, 30), amount),
    st.tuples(st.just("commit"), st.integers(0, 30), st.floats(0, 1.5)),
    st.tuples(st.just("release"), st.integers(0, 30)),
    st.tuples(st.just("crash")),
)


def _round(amounts: dict) -> dict:
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in amounts.items()}


def _run_sequence(url: str, ops: list) -> None:
    ledger = Ledger(url)
    accounts = {}
    for name, (parent, caps) in TREE.items():
        accounts[name] = ledger.root(name, caps) if parent is None else accounts[parent].child(name, caps)
    other = Ledger(url)  # a second process's view: its reservations die with it on "crash"
    other_accounts = {n: other.account(n) for n in TREE}
    open_: list = []
    overruns = 0
    for step in ops:
        kind = step[0]
        try:
            if kind == "reserve":
                _, name, amounts, by_other = step
                owner = other_accounts if by_other and other is not None else accounts
                open_.append(owner[name].reserve(**_round(amounts)))
            elif kind == "extend" and open_:
                open_[step[1] % len(open_)].extend(**_round(step[2]))
            elif kind == "commit" and open_:
                r = open_.pop(step[1] % len(open_))
                held = r.amounts
                factor = step[2]  # > 1: billed beyond the hold (a provider that ignored its limit)
                actual = {"usd": held.usd * factor, "calls": int(held.calls * factor),
                          "output_tokens": int(held.output_tokens * factor)}
                if factor > 1 and any(v > getattr(held, k) for k, v in actual.items()):
                    overruns += 1
                    with pytest.warns(RuntimeWarning, match="overrun"):
                        r.commit(**actual)
                else:
                    r.commit(**actual)
            elif kind == "release" and open_:
                open_.pop(step[1] % len(open_)).release()
            elif kind == "crash" and other is not None:
                other._lease.release()  # as if its process died: its lease is gone, its reservations open
                crashed = [r for r in open_ if r.account.ledger is other]
                open_ = [r for r in open_ if r.account.ledger is not other]
                with Ledger(url) as reopened:  # the next open settles them: charged in full, as reserved
                    assert {r.reservation_id for r in reopened.recovered} <= {r.id for r in crashed}
                other.close()
                other = None
        except (BudgetExceeded, ReservationClosed):
            pass
        assert_invariant(ledger)
        report = ledger.verify()
        assert not report.problems, report.problems
        assert len(report.violations) == overruns  # each overrun named, nothing else
        assert len(ledger.overruns()) == overruns
    ledger.close()
    if other is not None:
        other.close()


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=st.lists(op, min_size=1, max_size=25))
def test_random_sequences_keep_the_invariant_on_sqlite(tmp_path_factory, ops):
    _run_sequence(f"sqlite:///{tmp_path_factory.mktemp('h') / 'ledger.db'}", ops)


@pytest.mark.postgres
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=st.lists(op, min_size=1, max_size=20))
def test_random_sequences_keep_the_invariant_on_postgres(pg_server, ops):
    name = "h_" + os.urandom(6).hex()
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        _run_sequence(f"{pg_server.rpartition('/')[0]}/{name}", ops)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_cli_audit_fails_on_an_overrun(sqlite_url):
    """issue 11 class 1: `budgetflow ledger verify` said "ledger OK" for a ledger whose spend passed its cap."""
    from ..conftest import run_cli

    ledger = Ledger(sqlite_url)
    r = ledger.root("run", Budget(usd=0.1)).reserve(usd=0.1)
    with pytest.warns(RuntimeWarning, match="overrun"):
        r.commit(usd=0.3)
    ledger.close()
    cli = run_cli("ledger", "verify", "--db", sqlite_url)
    assert cli.returncode == 1 and "CAP VIOLATED" in cli.stderr and "billed beyond its reservation" in cli.stderr
