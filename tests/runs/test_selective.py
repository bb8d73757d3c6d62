"""Selective answering: the risk-coverage arithmetic on hand-made records (exact numbers), and `budgetflow run
--abstain-below` end to end on the real SmolLM2 server, process sandbox and SQLite ledger — abstentions recorded per
task, shown in selective.json and report.html, and kept by --resume."""

from __future__ import annotations

import json

import pytest

from budgetflow.runs import TaskRecord, abstains, risk_coverage, run_selective
from tests.runs.conftest import PRICE, bf_run, results

# (confidence, correct): None is a solver with no estimate
PAIRS = [(0.9, True), (0.8, True), (0.6, False), (0.6, True), (0.3, False), (None, False)]


def _row(sel, threshold):
    return next(o for o in sel.curve if o.threshold == threshold)


def test_curve_has_a_point_per_distinct_confidence_with_exact_counts():
    sel = risk_coverage(PAIRS, penalty=1.0)
    assert [o.threshold for o in sel.curve] == [0.3, 0.6, 0.8, 0.9, None]
    # unknown confidence is answered at every threshold (the default)
    assert [(o.answered, o.correct, o.wrong, o.utility) for o in sel.curve] == [
        (6, 3, 3, 0.0), (5, 3, 2, 1.0), (3, 2, 1, 1.0), (2, 1, 1, 0.0), (1, 0, 1, -1.0)]
    at = _row(sel, 0.6)
    assert at.coverage == pytest.approx(5 / 6) and at.risk == pytest.approx(0.4) and at.accuracy == pytest.approx(0.6)
    assert at.utility_per_task == pytest.approx(1 / 6) and at.abstained == 1
    assert sel.always.utility == 0.0 and sel.always.answered == 6
    assert sel.best.threshold == 0.6  # utility ties with 0.8: the one answering more wins
    assert sel.scored == 6 and sel.unknown == 1 and sel.as_run is None


def test_the_penalty_moves_the_best_threshold_and_unknowns_can_be_withheld():
    harsh = risk_coverage(PAIRS, penalty=2.0)
    assert [o.utility for o in harsh.curve] == [-3.0, -1.0, 0.0, -1.0, -2.0]
    assert harsh.best.threshold == 0.8 and harsh.always.utility == -3.0
    strict = risk_coverage(PAIRS, penalty=1.0, abstain_unknown=True)
    assert [(o.answered, o.utility) for o in strict.curve] == [(5, 1.0), (4, 2.0), (2, 2.0), (1, 1.0), (0, 0.0)]
    nothing = strict.curve[-1]
    assert nothing.risk is None and nothing.accuracy is None and nothing.coverage == 0.0
    assert strict.best.threshold == 0.6


def test_abstention_rule():
    assert abstains(0.49, 0.5) and not abstains(0.5, 0.5) and not abstains(0.1, None)
    assert not abstains(None, 0.5) and abstains(None, 0.5, abstain_unknown=True)
    assert risk_coverage([]) is None


def test_run_selective_counts_what_the_run_withheld_and_skips_unscored_tasks():
    def rec(i, conf, solved, abstained):
        return TaskRecord(id=f"t{i}", kind="code", model="m", strategy="sample", solved=solved, reason="finished",
                          confidence=conf, abstained=abstained)
    records = [rec(0, 0.9, True, False), rec(1, 0.2, False, True), rec(2, 0.4, True, True), rec(3, 0.7, None, False)]
    sel = run_selective(records, penalty=1.0, threshold=0.5)
    assert sel.scored == 3  # t3 has no verdict
    assert (sel.as_run.answered, sel.as_run.correct, sel.as_run.wrong, sel.as_run.utility) == (1, 1, 0, 1.0)
    assert sel.run_threshold == 0.5 and sel.always.utility == 1.0  # 2 right, 1 wrong


# ------------------------------------------------------------------ end to end

# SmolLM2-135M completes ` a + b` here nearly always; nobody guesses the secret, so its confidence is at most
# (0 + 1) / (1 + 2): the rule of succession over one failed visible test
ADD = {"kind": "code", "id": "add", "entry_point": "add",
       "prompt": 'def add(a: int, b: int) -> int:\n    """Return the sum of a and b."""\n    return',
       "visible_tests": ["assert add(1, 2) == 3"], "hidden_tests": "assert add(5, 5) == 10\n"}
SECRET = {"kind": "code", "id": "secret", "entry_point": "secret",
          "prompt": 'def secret() -> str:\n    """Return the secret string."""\n    return',
          "visible_tests": ["assert secret() == 'f3a9c1d07be2'"], "hidden_tests": "assert secret() == 'f3a9c1d07be2'\n"}


@pytest.fixture(scope="module")
def selective_run(smol_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("sel")
    source = root / "tasks.jsonl"
    source.write_text(json.dumps(ADD) + "\n" + json.dumps(SECRET) + "\n")
    out = root / "run"
    proc = bf_run(str(source), "--model", smol_model, *PRICE, "--budget-usd", "0.02", "--max-samples", "2",
                  "--max-tokens", "24", "-j", "1", "--abstain-below", "0.5", "--wrong-penalty", "2", "--out", str(out))
    return out, proc


def test_run_records_abstentions_and_reports_the_curve(selective_run):
    out, proc = selective_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = json.loads((out / "run.json").read_text())
    assert config["abstain_below"] == 0.5 and config["wrong_penalty"] == 2.0 and config["abstain_unknown"] is False
    lines = {r["id"]: r for r in results(out)}
    for r in lines.values():
        assert r["confidence"] is not None and 0 <= r["confidence"] <= 1
        assert r["abstained"] == (r["confidence"] < 0.5)
        assert r["selected"] is not None or r["confidence"] == 0  # a withheld answer is kept for the audit
    assert lines["secret"]["abstained"] and lines["secret"]["confidence"] <= 1 / 3 + 1e-9
    assert lines["secret"]["solved"] is False  # still scored
    sel = json.loads((out / "selective.json").read_text())
    withheld = sum(r["abstained"] for r in lines.values())
    assert sel["penalty"] == 2.0 and sel["run_threshold"] == 0.5 and sel["as_run"]["abstained"] == withheld
    right = sum(1 for r in lines.values() if r["solved"] and not r["abstained"])
    wrong = sum(1 for r in lines.values() if r["solved"] is False and not r["abstained"])
    assert sel["as_run"]["utility"] == right - 2.0 * wrong
    assert "selective answering" in proc.stdout and "always answering: utility" in proc.stdout
    assert "this run (--abstain-below 0.5)" in proc.stdout
    page = (out / "report.html").read_text()
    assert "<h2>Selective answering</h2>" in page and "<svg" in page and "risk-coverage" in page
    assert page.count("(abstained)</span>") == withheld
    assert "confidence,abstained" in (out / "results.csv").read_text().splitlines()[0]


def test_resume_keeps_the_threshold_and_refuses_another(selective_run):
    out, proc = selective_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    other = bf_run("--resume", "--out", str(out), "--abstain-below", "0.9")
    assert other.returncode == 2 and "--abstain-below: run.json has 0.5, you passed 0.9" in other.stderr
    # a kill just before the last task's result line: the resumed run redoes it under the saved threshold
    path = out / "results.jsonl"
    kept = path.read_text().splitlines()[:-1]
    path.write_text("\n".join(kept) + "\n")
    again = bf_run("--resume", "--out", str(out))
    assert again.returncode == 0, again.stderr[-3000:]
    redone = results(out)[-1]
    assert redone["resumed"] and redone["abstained"] == (redone["confidence"] < 0.5)
    assert "this run (--abstain-below 0.5)" in again.stdout


@pytest.mark.parametrize("flag,value,message", [("--abstain-below", "1.5", "must be between 0 and 1"),
                                                ("--abstain-below", "-0.1", "must be between 0 and 1"),
                                                ("--wrong-penalty", "-1", "must be at least 0")])
def test_bad_thresholds_are_refused_in_one_line(tmp_path, flag, value, message):
    proc = bf_run("gsm8k100", "--model", "vllm/x@http://127.0.0.1:9/v1", "--budget-usd", "0.01", flag, value,
                  "--out", str(tmp_path / "bad"))
    assert proc.returncode == 2 and message in proc.stderr and not (tmp_path / "bad").exists()
