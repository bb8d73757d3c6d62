"""`budgetflow run --strategy cascade --set calibrate=1` end to end on three HumanEval tasks: the first task measures
every stage, the others run the learned cascade, and the per-stage table is in results.jsonl, DIR/cascade.json and
the report — with the ledger's per-stage accounts adding up to each task's spend."""

from __future__ import annotations

import json

import pytest

from budgetflow import Ledger
from tests.runs.conftest import PRICE, bf_run, results


@pytest.fixture(scope="module")
def cascade_run(smol_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("cascade") / "casc"
    proc = bf_run("humaneval", "--limit", "3", "--model", smol_model, *PRICE, "--budget-usd", "0.5",
                  "--max-tokens", "32", "--strategy", "cascade", "--set", "stages=T0x1,T1x2", "--set", "calibrate=1",
                  "-j", "2", "--out", str(out))
    return out, proc


def test_calibration_then_the_learned_cascade_with_per_stage_spend(cascade_run):
    out, proc = cascade_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = {r["id"]: r for r in results(out)}
    assert sorted(lines) == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    saved = json.loads((out / "cascade.json").read_text())
    learned = saved["learned"]
    # a cap large enough that calibration runs both stages to their end: the order is learned from it
    assert saved["calibration_tasks"] == ["HumanEval/0"] and (learned["tasks"], learned["excluded"]) == (1, 0)
    assert [(c["stage"], c["config"], c["tasks"]) for c in learned["table"]] == [(1, "T0x1", 1), (2, "T1x2", 1)]
    assert learned["order"] and "exact search" in learned["rule"]
    calib = lines["HumanEval/0"]["metrics"]["cascade"]
    assert calib["mode"] == "calibrate" and [s["stage"] for s in calib["stages"]] == [1, 2]  # every stage measured
    config = json.loads((out / "run.json").read_text())
    ledger = Ledger(config["ledger"], create=False)
    try:
        accounts = {b.name: b for b in ledger.accounts()}
        for tid, r in lines.items():
            cascade = r["metrics"]["cascade"]
            if tid != "HumanEval/0":  # after calibration: the learned order, stopping at the first pass
                assert cascade["mode"] == "cascade" and cascade["order"] == learned["order"]
                ran = [s["stage"] for s in cascade["stages"]]
                assert ran == learned["order"][:len(ran)]
                assert all(not s["passed"] for s in cascade["stages"][:-1])
            for s in cascade["stages"]:  # each stage's row is its own ledger account
                assert s["usd"] == pytest.approx(accounts[f"{r['account']}/stage{s['stage']}"].committed.usd, abs=1e-9)
            total = r["spend"]["total"]["usd"]
            assert sum(s["usd"] for s in cascade["stages"]) == pytest.approx(total, abs=1e-9)
            assert set(r["spend"]) == {"total"} | {f"stage{s['stage']}" for s in cascade["stages"]}
        assert accounts["casc"].committed.usd <= 0.5 and ledger.verify().ok
    finally:
        ledger.close()
    report = (out / "report.html").read_text()
    assert "<h2>Cascade</h2>" in report and "calibration: stage" in report and "stage1 <code>T0x1</code>" in report


def test_resume_keeps_the_learned_cascade(cascade_run, smol_model):
    out, _ = cascade_run
    before = (out / "cascade.json").read_text()
    lines = (out / "results.jsonl").read_text().splitlines()
    # forget the last task's result line, as if the run had been killed before recording it
    keep = [ln for ln in lines if json.loads(ln)["id"] != "HumanEval/2"]
    (out / "results.jsonl").write_text("\n".join(keep) + "\n")
    proc = bf_run("--resume", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "cascade.json").read_text() == before  # learned once, reused
    redone = {r["id"]: r for r in results(out)}["HumanEval/2"]
    assert redone["resumed"] and redone["metrics"]["cascade"]["order"] == json.loads(before)["learned"]["order"]
