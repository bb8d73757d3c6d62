"""The thinking-budget solvers through the real command line: `budgetflow run --strategy think` and
`--strategy plan-and-budget` on math tasks with SmolLM2 on vLLM, a SQLite ledger, selective answering on top. What
each task generated is read back from the ledger: budget forcing never lets a sample think past its budget."""

from __future__ import annotations

import json

import pytest

from budgetflow import Ledger
from tests.runs.conftest import PRICE, bf_run, results

PROBLEMS = [{"kind": "math", "id": "apples", "answer": 7,
             "question": "Tom has 3 apples and buys 4 more. How many apples does he have?"},
            {"kind": "math", "id": "pens", "answer": 12,
             "question": "A box holds 4 pens. How many pens are in 3 boxes?"}]


def _run(smol_model, tmp_path, *args: str):
    src = tmp_path / "math.jsonl"
    src.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    out = tmp_path / "run"
    proc = bf_run(str(src), "--model", smol_model, *PRICE, "--budget-usd", "0.05", *args, "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, {r["id"]: r for r in results(out)}


def _solver_calls(out) -> dict[str, list[int]]:
    """Per task, the output tokens each of the solver's own model calls committed, from the ledger's journal. The
    engine's speed calibration (one reservation of several requests, charged to the first task that needs it) is
    not the solver's and is left out."""
    ledger = Ledger(json.loads((out / "run.json").read_text())["ledger"], create=False)
    try:
        assert ledger.verify().ok
        calls: dict[str, list[int]] = {}
        for task_id in ("apples", "pens"):
            entries = ledger.entries(f"run/task/{task_id}")
            single = {e.reservation for e in entries if e.kind == "reserve" and e.amounts.get("calls") == 1}
            calls[task_id] = [int(e.amounts.get("output_tokens", 0)) for e in entries
                              if e.kind == "commit" and e.reservation in single]
        return calls
    finally:
        ledger.close()


def test_think_caps_each_sample_at_its_thinking_budget_plus_the_answer(smol_model, tmp_path):
    budget, answer_cap, samples = 24, 8, 2
    out, lines = _run(smol_model, tmp_path, "--strategy", "think", "--set", f"thinking_budget={budget}",
                      "--set", f"answer_max_tokens={answer_cap}", "--set", f"samples={samples}",
                      "--set", "temperature=0.7", "--abstain-below", "0.99")
    assert set(lines) == {"apples", "pens"}
    calls = _solver_calls(out)
    for task_id, line in lines.items():
        assert line["strategy"] == "think"
        # the ledger's own count: one reasoning call for the k samples, each cut at the thinking budget, then one
        # answer call per sample under its own cap
        reasoning, *answers = calls[task_id]
        assert 0 < reasoning <= samples * budget and len(answers) <= samples
        assert all(a <= answer_cap for a in answers)
        conf = line["confidence"]
        assert conf is not None and 0 <= conf <= 1
        assert line["abstained"] == (conf < 0.99)  # a two-sample vote is sure only when both agree
    assert (out / "selective.json").exists()


@pytest.mark.parametrize("schedule", ["uniform", "polynomial"])
def test_plan_and_budget_stays_inside_its_total(smol_model, tmp_path, schedule):
    total = 120
    out, lines = _run(smol_model, tmp_path, "--strategy", "plan-and-budget", "--set", f"total_tokens={total}",
                      "--set", f"schedule={schedule}", "--set", "plan_max_tokens=32")
    calls = _solver_calls(out)
    for task_id, line in lines.items():
        assert line["strategy"] == "plan-and-budget" and line["reason"] != "error", line
        assert 0 < sum(calls[task_id]) <= total
