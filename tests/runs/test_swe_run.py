"""`budgetflow run` on an SWE-bench-style JSONL of instances: a real project with its own dependencies (glom, from
the cached fixtures; its environment built offline from the local wheelhouse) and a tiny git repository, the real
SmolLM2 server by URL, the real process sandbox and a SQLite ledger. The run writes predictions.jsonl in the format
the SWE-bench harness reads, and the SWE measurements (agent shares, prompt sizes, context events, why each
trajectory stopped) in results.jsonl and report.html."""

from __future__ import annotations

import json

import pytest

from budgetflow.tasks import PREDICTION_KEYS

from ..agents.conftest import make_tiny_repo
from .conftest import PRICE, bf_run, results


@pytest.fixture(scope="module")
def instances(tmp_path_factory):
    from budgetflow.swe import ensure_swe_fixtures, fixtures_root

    if not (fixtures_root() / "index.json").is_file():
        pytest.fail("fixtures not built: run scripts/setup_swe_tasks.sh (make test does, before the tests)")
    glom = next(t for t in ensure_swe_fixtures() if t.project == "glom")
    base = tmp_path_factory.mktemp("swebench")
    tiny = make_tiny_repo(base / "tiny")
    rows = [
        {"instance_id": glom.instance_id, "repo": glom.repo, "problem_statement": glom.issue,
         "FAIL_TO_PASS": json.dumps(list(glom.fail_to_pass)), "PASS_TO_PASS": json.dumps(list(glom.pass_to_pass)),
         "environment": glom.environment.model_dump(mode="json"), "hidden_tests": False},
        {"instance_id": tiny.instance_id, "repo": "tiny", "problem_statement": tiny.issue,
         "FAIL_TO_PASS": list(tiny.fail_to_pass), "PASS_TO_PASS": list(tiny.pass_to_pass), "hidden_tests": False},
    ]
    path = base / "instances.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, [r["instance_id"] for r in rows]


def test_a_run_on_swebench_instances_writes_predictions_and_swe_measurements(instances, smol_model, tmp_path,
                                                                            monkeypatch):
    path, ids = instances
    out = tmp_path / "run"
    monkeypatch.setenv("BUDGETFLOW_OFFLINE", "1")  # the subprocess inherits it: environments from the wheelhouse only
    proc = bf_run(str(path), "--model", smol_model, *PRICE, "--budget-usd", "0.05", "--out", str(out),
                  "-j", "2", "--set", "wave_size=2", "--set", "max_waves=1", "--set", "max_turns=2",
                  "--set", "attempts=1", "--set", "turn_max_tokens=96", timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    recs = {r["id"]: r for r in results(out)}
    assert set(recs) == set(ids) and all(r["kind"] == "repo" and not r["error"] for r in recs.values()), recs
    preds = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [p["instance_id"] for p in preds] == sorted(ids, key=[p["instance_id"] for p in preds].index)
    assert len(preds) == 2 and all(tuple(p) == PREDICTION_KEYS for p in preds)
    for p in preds:
        assert p["model_name_or_path"] == "vllm/smollm2-135m"  # no server URL in the harness's model name
        assert p["model_patch"] == (recs[p["instance_id"]]["selected"] or "")
        assert p["model_patch"] == "" or p["model_patch"].startswith("diff --git")
    for rec in recs.values():
        m = rec["metrics"]
        assert set(m["shares"]) == {"tester", "solver", "verifier", "selector"}
        assert m["shares"]["solver"] > 0 and sum(m["shares"].values()) <= 1.0 + 1e-6
        assert m["trajectories"] and all(t["stop"] in ("tests pass", "done", "turns", "budget", "context",
                                                       "model error", "error") for t in m["trajectories"])
        assert 0 < m["prompt_tokens"]["max"] <= 2048 and m["waves"][0]["trajectories"] >= 1
    glom_traj = recs[ids[0]]["metrics"]["trajectories"]
    assert any(t["located"] and t["located"][0].startswith("glom/") for t in glom_traj)  # localised in glom's code
    html = (out / "report.html").read_text()
    assert "<h2>SWE agents</h2>" in html and "Largest prompt sent" in html and ids[0] in html


def test_a_local_model_is_served_with_the_context_it_supports_and_longer_prompts_are_answered(instances, tmp_path,
                                                                                             monkeypatch):
    """The local model's own context (SmolLM2: 8192; Qwen2.5: 32768, both within the 1 GiB CPU KV cache), said at
    start-up — not the 2048 tokens that refused a 7528-token selection prompt. A glom trajectory's prompt is longer
    than 2048 tokens: it is sent and answered."""
    from budgetflow.llm import serving_context

    assert serving_context("local/qwen2.5-coder-1.5b")[0] == 32768
    small, why = serving_context("local/qwen2.5-coder-1.5b", kv_cache_gib=0.25)
    assert small < 32768 and "KV cache" in why  # a smaller cache serves what it holds, and says so
    path, ids = instances
    one = tmp_path / "glom.jsonl"
    one.write_text(path.read_text().splitlines()[0] + "\n")
    out = tmp_path / "local"
    monkeypatch.setenv("BUDGETFLOW_OFFLINE", "1")
    proc = bf_run(str(one), "--model", "local/smollm2-135m", *PRICE, "--budget-usd", "0.05", "--out", str(out),
                  "--set", "wave_size=1", "--set", "max_waves=1", "--set", "max_turns=2", "--set", "attempts=1",
                  "--set", "turn_max_tokens=64", timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    said = " ".join((proc.stdout + proc.stderr).split())
    assert "served with a context of 8192 tokens" in said
    (rec,) = results(out)
    assert json.loads((out / "run.json").read_text())["engine_options"]["max_model_len"] == 8192
    traj = rec["metrics"]["trajectories"]
    assert traj and all(t["stop"] != "model error" for t in traj), rec["notes"]
    assert 2048 < rec["metrics"]["prompt_tokens"]["max"] <= 8192 - 48


def test_the_same_run_works_on_the_docker_backend(instances, smol_model, tmp_path, monkeypatch):
    """`--sandbox docker`: glom's tests run in its environment's image (the base image has neither pytest nor glom's
    dependencies), so the trajectory's own test run reports glom's tests, as on the process backend."""
    path, ids = instances
    one = tmp_path / "glom.jsonl"
    one.write_text(path.read_text().splitlines()[0] + "\n")
    glom = json.loads(one.read_text())
    out = tmp_path / "docker"
    monkeypatch.setenv("BUDGETFLOW_OFFLINE", "1")
    proc = bf_run(str(one), "--model", smol_model, *PRICE, "--budget-usd", "0.05", "--out", str(out),
                  "--sandbox", "docker", "--set", "wave_size=1", "--set", "max_waves=1", "--set", "max_turns=1",
                  "--set", "attempts=1", "--set", "turn_max_tokens=64", timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (rec,) = results(out)
    assert rec["error"] is None and json.loads((out / "run.json").read_text())["sandbox"] == "docker"
    cands = json.loads((out / rec["candidates_file"]).read_text())["candidates"]
    tested = [c["self_test"] for c in cands if c.get("self_test")]
    wanted = len(json.loads(glom["FAIL_TO_PASS"])) + len(json.loads(glom["PASS_TO_PASS"]))
    assert tested and all(t["passed"] + t["failed"] == wanted and t["passed"] > 0 for t in tested), tested
    assert [json.loads(x)["instance_id"] for x in (out / "predictions.jsonl").read_text().splitlines()] == [ids[0]]
