"""`budgetflow run` end to end: HumanEval tasks and a JSONL file through the real command line, SmolLM2 on vLLM, the
process sandbox and a SQLite ledger; the report opened in headless Chromium; a bad JSONL line refused before a cent."""

from __future__ import annotations

import base64
import csv
import json
import re
import struct

import pytest

from budgetflow import Ledger
from tests.conftest import run_cli
from tests.runs.chromium import open_report
from tests.runs.conftest import PRICE, SMALL, bf_run, results

# SmolLM2-135M completes ` a + b` here nearly always (measured in tests/agents): a task the tiny model can solve
ADD = {"kind": "code", "id": "add", "entry_point": "add",
       "prompt": 'def add(a: int, b: int) -> int:\n    """Return the sum of a and b."""\n    return',
       "visible_tests": ["assert add(1, 2) == 3"], "hidden_tests": "assert add(5, 5) == 10\n"}
SUB = {**ADD, "id": "sub", "entry_point": "sub",
       "prompt": 'def sub(a: int, b: int) -> int:\n    """Return a minus b."""\n    return',
       "visible_tests": ["assert sub(3, 1) == 2"], "hidden_tests": "assert sub(5, 3) == 2\n"}
MATH = {"kind": "math", "id": "apples", "question": "Tom has 3 apples and buys 4 more. How many apples does he have?",
        "answer": 7}


@pytest.fixture(scope="module")
def humaneval_run(smol_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("he") / "demo"
    proc = bf_run("humaneval", "--limit", "3", "--model", smol_model, *PRICE, "--budget-usd", "0.02", *SMALL,
                  "-j", "2", "--out", str(out))
    return out, proc


def test_humaneval_run_records_every_task_on_its_own_account(humaneval_run):
    out, proc = humaneval_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "3/3 tasks done" in proc.stdout and "ledger OK" in proc.stdout
    lines = results(out)
    assert [r["id"] for r in sorted(lines, key=lambda r: r["id"])] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    config = json.loads((out / "run.json").read_text())
    assert config["budget_usd"] == 0.02 and config["name"] == "demo" and config["search"]["max_samples"] == 2
    ledger = Ledger(config["ledger"], create=False)
    try:
        accounts = {b.name: b for b in ledger.accounts()}
        run = accounts["demo"]
        assert run.committed.usd <= 0.02 and run.reserved.usd == 0 and ledger.verify().ok
        # every task spent through demo/task/<id>, split by kind, and that is all the run spent
        for r in lines:
            acct = accounts[r["account"]]
            assert r["account"] == f"demo/task/{r['id']}" and acct.parent == "demo"
            assert r["spend"].get("total", {}).get("usd", 0.0) == pytest.approx(acct.committed.usd, abs=1e-9)
            assert set(r["spend"]) <= {"total", "generate", "verify"}
            assert r["samples"] <= 2 and r["reason"] in ("solved", "exhausted", "budget")
            assert r["solved"] in (True, False) and isinstance(r["wall_s"], float)
            assert (out / r["candidates_file"]).is_file() and (out / r["log_file"]).is_file()
            if r["samples"]:
                cands = json.loads((out / r["candidates_file"]).read_text())["candidates"]
                assert len(cands) == r["samples"] and sum(c["selected"] for c in cands) == 1
        children = [b for b in accounts.values() if b.parent == "demo"]
        assert len(children) == 3
        assert sum(b.committed.usd for b in children) == pytest.approx(run.committed.usd, abs=1e-9)
        # hidden tests ran on the scoring account, outside the run's budget
        scoring = accounts["demo-scoring"]
        assert scoring.parent is None and scoring.committed.calls == sum(1 for r in lines if r["selected"] is not None)
    finally:
        ledger.close()
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 3 and {"id", "solved", "usd", "scoring_cpu_seconds", "log_file"} <= set(rows[0])


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_report_is_self_contained_and_renders_in_chromium(humaneval_run):
    out, proc = humaneval_run
    assert proc.returncode == 0, proc.stderr[-2000:]
    (out / "report.html").unlink()
    rebuilt = run_cli("report", str(out))
    assert rebuilt.returncode == 0, rebuilt.stderr
    html = (out / "report.html").read_text()
    # self-contained: nothing is fetched from anywhere; the links go to the run's own files
    assert not re.search(r"""(src|href)=['"]?(https?:|//)""", html) and "<script" not in html
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert len(images) == 4
    for b64 in images:
        w, h = _png_size(base64.b64decode(b64))
        assert w > 100 and h > 50
    for title in ("solved vs spend", "spend by agent", "spend by model", "spend by task"):
        assert title in html
    for r in results(out):
        assert f"href='{r['candidates_file']}'" in html and f"href='{r['log_file']}'" in html
    seen = open_report(out / "report.html", out / "report.png")
    assert seen["screenshot_rc"] == 0 and seen["dom_rc"] == 0
    assert seen["console"] == [], seen["console"]  # no JS errors, no failed loads
    assert seen["probe_ran"] and len(seen["images"]) == 4
    assert all(w > 100 and h > 50 for w, h in seen["images"]), seen["images"]  # the browser decoded every plot
    shot = (out / "report.png").read_bytes()
    assert len(shot) > 10_000 and _png_size(shot)[0] == 1280


def test_jsonl_source_mixed_kinds_with_the_allocate_policy(smol_model, tmp_path):
    src = tmp_path / "tasks.jsonl"
    src.write_text("\n".join(json.dumps(t) for t in (ADD, MATH, SUB)) + "\n")
    out = tmp_path / "mixed"
    proc = bf_run(str(src), "--model", smol_model, *PRICE, "--budget-usd", "0.02", "--max-samples", "2",
                  "--max-tokens", "24", "--policy", "allocate", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = {r["id"]: r for r in results(out)}
    assert set(lines) == {"add", "sub", "apples"}
    assert lines["add"]["strategy"] == "allocate" and lines["apples"]["strategy"] == "majority"
    assert lines["apples"]["kind"] == "math" and "expected '7'" in lines["apples"]["scoring"]["detail"]
    ledger = Ledger(json.loads((out / "run.json").read_text())["ledger"], create=False)
    try:
        tree = {b.name: b for b in ledger.accounts()}
        # the two code tasks shared one allocation; the math task got its own share
        assert tree["mixed/task/add"].parent == tree["mixed/task/sub"].parent == "mixed/alloc/0"
        assert tree["mixed/alloc/0"].parent == "mixed" and tree["mixed/task/apples"].parent == "mixed"
        assert tree["mixed"].committed.usd <= 0.02 and ledger.verify().ok
    finally:
        ledger.close()


def test_a_bad_jsonl_line_is_refused_before_anything_is_spent(tmp_path):
    src = tmp_path / "tasks.jsonl"
    bad = {**ADD, "id": "broken"}
    del bad["entry_point"]
    src.write_text("\n".join(json.dumps(t) for t in (ADD, MATH, bad, SUB)) + "\n")
    out = tmp_path / "never"
    # the model would not even be reachable: the source is checked first
    proc = bf_run(str(src), "--model", "vllm/smollm2-135m@http://127.0.0.1:9/v1", *PRICE, "--budget-usd", "1",
                  "--out", str(out))
    assert proc.returncode == 2
    assert f"{src}:3: field 'entry_point': Field required" in " ".join(proc.stderr.split())
    assert not out.exists()  # no directory, no ledger, nothing spent

    # a run already in DIR loses nothing when its source turns bad before --resume
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "results.jsonl").write_text('{"id": "add"}\n')
    (kept / "run.json").write_text(json.dumps({
        "source": str(src), "model": "vllm/smollm2-135m@http://127.0.0.1:9/v1", "budget_usd": 1.0, "name": "kept",
        "out": str(kept), "ledger": f"sqlite:///{kept / 'ledger.db'}", "prices": {"vllm/smollm2-135m": {
            "cpu_second": 0.001}}}))
    before = {p.name: p.read_bytes() for p in kept.iterdir()}
    proc = bf_run("--resume", "--out", str(kept))
    assert proc.returncode == 2 and f"{src}:3:" in proc.stderr
    assert {p.name: p.read_bytes() for p in kept.iterdir()} == before


def test_graph_strategy_spends_through_the_agents_on_the_task_account(smol_model, tmp_path):
    src = tmp_path / "add.jsonl"
    src.write_text(json.dumps(ADD) + "\n")
    out = tmp_path / "graph"
    proc = bf_run(str(src), "--strategy", "graph", "--model", smol_model, *PRICE, "--budget-usd", "0.01",
                  "--max-samples", "2", "--max-tokens", "24", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = results(out)
    assert line["strategy"] == "graph" and line["reason"] in ("solved", "exhausted", "budget")
    assert "solver" in line["spend"] and (out / "checkpoints.db").exists()  # the graph's agents, checkpointed
    with Ledger(json.loads((out / "run.json").read_text())["ledger"], create=False) as ledger:
        tree = {b.name: b.parent for b in ledger.accounts()}
    assert tree["graph/task/add/solver"] == "graph/task/add" and tree["graph/task/add"] == "graph"


def test_the_default_concurrency_is_sized_from_the_engine_and_progress_prints_when_piped(smol_model, tmp_path):
    """issue 18: `budgetflow run` used one thread unless told otherwise, and printed nothing while piped."""
    src = tmp_path / "three.jsonl"
    src.write_text("".join(json.dumps({**ADD, "id": f"add{i}"}) + "\n" for i in range(3)))
    out = tmp_path / "auto"
    proc = bf_run(str(src), "--model", smol_model, *PRICE, "--budget-usd", "0.02", *SMALL, "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "task(s) at once:" in proc.stderr and "sequences in flight" in proc.stderr  # said what it picked
    assert json.loads((out / "run.json").read_text())["concurrency"] is None  # a resume sizes it again
    lines = [ln for ln in proc.stderr.splitlines() if re.match(r"\[\d/3\] add\d: ", ln)]
    assert len(lines) == 3 and all("spent $" in ln and "left $" in ln and "ETA" in ln for ln in lines)
