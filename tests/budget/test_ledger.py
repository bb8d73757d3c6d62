"""Behaviour of accounts and reservations, on SQLite and on PostgreSQL."""

import warnings

import pytest

from budgetflow import Budget, BudgetExceeded, Ledger
from budgetflow.budget import AccountMismatch, ReservationClosed


def test_reserve_holds_on_every_ancestor_and_commit_frees_the_rest(ledger_url):
    ledger = Ledger(ledger_url)
    run = ledger.root("run", Budget(usd=1.0, calls=10))
    task = run.child("task-1", Budget(usd=0.5))
    agent = task.child("solver")
    r = agent.reserve(usd=0.2, calls=1, output_tokens=500)
    for acc in (run, task, agent):
        assert acc.held().usd == pytest.approx(0.2) and acc.held().calls == 1
    assert r.commit(usd=0.05, calls=1, output_tokens=120).usd == pytest.approx(0.05)
    for acc in (run, task, agent):
        assert acc.held().usd == 0
        assert acc.spent().usd == pytest.approx(0.05) and acc.spent().output_tokens == 120
    assert agent.remaining().usd == pytest.approx(0.45)  # task's cap is the tightest
    assert run.remaining().calls == 9
    assert ledger.verify().ok
    ledger.close()


def test_budget_exceeded_names_account_need_and_left(ledger_url):
    ledger = Ledger(ledger_url)
    run = ledger.root("run", Budget(usd=0.50))
    task = run.child("task-17")
    task.reserve(usd=0.4992).commit(usd=0.4992)
    with pytest.raises(BudgetExceeded) as info:
        task.reserve(usd=0.0031)
    err = info.value
    assert err.account == "run" and err.dimension == "usd"
    assert str(err) == "BudgetExceeded: run needs ≥ $0.0031, $0.0008 left of $0.5 (usd)"
    # the refusal left nothing behind
    assert run.held().usd == 0 and ledger.verify().ok
    ledger.close()


def test_nearest_exhausted_account_is_named(ledger_url):
    ledger = Ledger(ledger_url)
    run = ledger.root("run", Budget(calls=100))
    task = run.child("task-3", Budget(calls=1))
    task.reserve(calls=1)
    with pytest.raises(BudgetExceeded, match="task-3 needs ≥ 1 calls, 0 calls left of 1 calls"):
        task.reserve(calls=1)
    ledger.close()


def test_release_and_context_exit(ledger_url):
    ledger = Ledger(ledger_url)
    acc = ledger.root("a", Budget(usd=1.0))
    acc.reserve(usd=0.3).release()
    assert acc.spent().usd == 0 and acc.held().usd == 0
    with acc.reserve(usd=0.2):
        pass  # neither commit nor release: unknown outcome, charged in full
    assert acc.spent().usd == pytest.approx(0.2)
    with pytest.raises(RuntimeError):
        with acc.reserve(usd=0.1):
            raise RuntimeError("provider call blew up")
    assert acc.spent().usd == pytest.approx(0.3)
    notes = [e.note for e in ledger.entries() if e.kind == "commit"]
    assert any("no commit" in n for n in notes) and any("exception" in n for n in notes)
    with acc.reserve(usd=0.1) as r:
        r.commit(usd=0.01)
    assert acc.spent().usd == pytest.approx(0.31)  # a committed reservation is not charged again at exit
    with pytest.raises(ReservationClosed):
        r.commit(usd=0.01)
    with pytest.raises(ReservationClosed):
        r.release()
    ledger.close()


def test_reopen_by_name_and_mismatches(ledger_url):
    ledger = Ledger(ledger_url)
    run = ledger.root("run", Budget(usd=2))
    run.child("t", Budget(usd=1)).reserve(usd=0.5).commit(usd=0.5)
    ledger.close()
    again = Ledger(ledger_url)
    t = again.account("t")
    assert t.spent().usd == pytest.approx(0.5)
    assert again.account("t", parent="run").id == t.id
    run = again.root("run", Budget(usd=2))
    assert run.child("t", Budget(usd=1)).id == t.id
    with pytest.raises(AccountMismatch, match="already exists with budget"):
        run.child("t", Budget(usd=3))
    with pytest.raises(AccountMismatch, match="already exists with budget"):
        again.root("run", Budget(usd=3))
    other = again.root("other", Budget())
    with pytest.raises(AccountMismatch, match="not under 'other'"):
        again.account("t", parent="other")
    with pytest.raises(AccountMismatch, match="already exists elsewhere"):
        other.child("t")
    with pytest.raises(AccountMismatch, match="already exists elsewhere"):
        again.root("t", Budget(usd=1))  # a sub-account is not a root
    with pytest.raises(ValueError):
        again.account("")
    again.close()


def test_reopening_never_creates_an_uncapped_root(ledger_url):
    """issue 11 class 9: `ledger.account(name)` on a name the ledger lacks used to create an uncapped root."""
    from budgetflow.budget import AccountMissing

    ledger = Ledger(ledger_url)
    ledger.root("run", Budget(usd=1)).child("run/task")
    with pytest.raises(AccountMissing, match="has no account 'run/tsak'"):
        ledger.account("run/tsak")
    with pytest.raises(TypeError, match="needs its Budget"):
        ledger.root("x", None)
    assert [b.name for b in ledger.accounts()] == ["run", "run/task"]  # nothing was created
    ledger.close()


def test_bad_amounts_are_refused_before_anything_is_held(ledger_url):
    ledger = Ledger(ledger_url)
    acc = ledger.root("a", Budget(usd=1))
    with pytest.raises(TypeError, match="unknown budget dimension"):
        acc.reserve(dollars=1)
    with pytest.raises(ValueError, match="negative"):
        acc.reserve(usd=-1)
    with pytest.raises(ValueError, match="NaN"):
        acc.reserve(usd=float("nan"))
    assert acc.held().usd == 0 and len(ledger.entries()) == 1  # only the account's own 'open' entry
    ledger.close()


def test_zero_cap_refuses_everything(ledger_url):
    ledger = Ledger(ledger_url)
    acc = ledger.root("frozen", Budget(usd=0))
    with pytest.raises(BudgetExceeded):
        acc.reserve(usd=1e-9)
    acc.reserve(calls=1).commit(calls=1)  # uncapped quantities still flow
    ledger.close()


def test_a_commit_never_charges_past_its_reservation(ledger_url):
    """issue 11 class 1: the ledger accepted a commit larger than its reservation and verify() called it OK."""
    ledger = Ledger(ledger_url)
    run = ledger.root("run", Budget(usd=0.12))
    acc = run.child("a")
    r = acc.reserve(usd=0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        charged = r.commit(usd=0.15)
    assert any("overrun" in str(w.message) for w in caught)
    assert charged.usd == pytest.approx(0.1)
    assert acc.spent().usd == pytest.approx(0.1) and run.spent().usd <= 0.12  # the balances never pass the cap
    (over,) = ledger.overruns()
    assert over.kind == "overrun" and over.reservation == r.id and over.amounts["usd"] == pytest.approx(0.05)
    report = ledger.verify()
    assert not report.ok and not report.problems  # not tampering: a violation of the cap, named
    assert "billed beyond its reservation" in report.violations[0] and f"#{over.seq}" in report.violations[0]
    assert report.summary().startswith("CAP VIOLATED")
    ledger.close()


def test_reservation_closed_by_recovery_cannot_be_committed(ledger_url):
    first = Ledger(ledger_url)
    acc = first.root("a", Budget(usd=1))
    r = acc.reserve(usd=0.4)
    first._lease.release()  # as if this process had died: its lease is gone
    second = Ledger(ledger_url)
    assert [x.reservation_id for x in second.recovered] == [r.id]
    with pytest.raises(ReservationClosed, match="already settled"):
        r.commit(usd=0.1)
    assert second.account("a").spent().usd == pytest.approx(0.4)  # charged once, as reserved
    assert second.verify().ok
    first.close()
    second.close()


def test_in_memory_ledger(tmp_path):
    ledger = Ledger("sqlite://")
    acc = ledger.root("a", Budget(calls=2))
    acc.reserve(calls=1).commit(calls=1)
    assert acc.remaining().calls == 1 and ledger.verify().ok


def test_plain_path_is_sqlite(tmp_path):
    ledger = Ledger(tmp_path / "x.db")
    assert ledger.backend == "sqlite"
    ledger.root("a", Budget())
    assert (tmp_path / "x.db").exists()
    ledger.close()


def test_sqlite_file_in_a_new_directory(tmp_path):
    ledger = Ledger(tmp_path / "runs" / "demo" / "ledger.db")
    ledger.root("a", Budget())
    assert (tmp_path / "runs" / "demo" / "ledger.db").exists()
    ledger.close()


def test_a_ledger_refuses_to_be_used_across_fork(sqlite_url):
    import os

    ledger = Ledger(sqlite_url)
    acc = ledger.root("a", Budget(calls=5))
    pid = os.fork()
    if pid == 0:  # child: sharing the parent's connections would corrupt them
        try:
            acc.reserve(calls=1)
            os._exit(1)
        except RuntimeError as err:
            os._exit(0 if "across fork" in str(err) else 2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    acc.reserve(calls=1).commit(calls=1)  # the parent is unaffected
    assert acc.spent().calls == 1
    ledger.close()


def test_extend_grows_a_reservation_under_the_same_caps(ledger_url):
    ledger = Ledger(ledger_url)
    run = ledger.root("run", Budget(cpu_seconds=10))
    task = run.child("task")
    r = task.reserve(cpu_seconds=3)
    r.extend(cpu_seconds=4)
    assert run.held().cpu_seconds == pytest.approx(7) and r.amounts.cpu_seconds == pytest.approx(7)
    with pytest.raises(BudgetExceeded, match="run needs ≥ 4 cpu-seconds, 3 cpu-seconds left"):
        r.extend(cpu_seconds=4)
    assert run.held().cpu_seconds == pytest.approx(7)  # the failed extension changed nothing
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # within the extended hold: no overrun
        r.commit(cpu_seconds=6.5)
    assert run.spent().cpu_seconds == pytest.approx(6.5) and run.held().cpu_seconds == 0
    assert "overrun" not in ledger.entries()[-1].note
    with pytest.raises(ReservationClosed):
        r.extend(cpu_seconds=1)
    assert ledger.verify().ok
    ledger.close()


def test_recovery_charges_the_extended_amount(ledger_url):
    first = Ledger(ledger_url)
    r = first.root("a", Budget(usd=1)).reserve(usd=0.1)
    r.extend(usd=0.15)
    first._lease.release()
    second = Ledger(ledger_url)
    assert second.account("a").spent().usd == pytest.approx(0.25)
    assert second.verify().ok
    first.close()
    second.close()
