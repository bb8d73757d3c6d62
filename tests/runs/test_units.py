"""The parts of a batch run that need no model: the JSONL task schema, budget shares, resume settings, the store."""

from __future__ import annotations

import json

import pytest

from budgetflow import Ledger
from budgetflow.runs import RunConfig, RunConfigError, RunDir, TaskRecord, prepare_run
from budgetflow.runs._config import merge_for_resume, save_config
from budgetflow.runs._policy import Planner
from budgetflow.runs._pricing import resolve_prices
from budgetflow.runs._runner import open_run_accounts
from budgetflow.tasks import CodeTask
from budgetflow.tasks._jsonl import TaskFileError, load_jsonl_tasks, parse_task_line

GOOD_CODE = {"kind": "code", "id": "add", "prompt": 'def add(a, b):\n    """Sum."""\n', "entry_point": "add",
             "visible_tests": ["assert add(1, 2) == 3"], "hidden_tests": ["assert add(2, 2) == 4"]}
GOOD_MATH = {"kind": "math", "id": "apples", "question": "3 apples and 4 more?", "answer": "7"}


@pytest.mark.parametrize("line, message", [
    ({**GOOD_CODE, "entry_point": None}, "field 'entry_point'"),
    ({k: v for k, v in GOOD_CODE.items() if k != "prompt"}, "field 'prompt': Field required"),
    ({**GOOD_CODE, "entry_point": "mul"}, "field 'entry_point': 'mul' is not defined by the prompt"),
    ({**GOOD_CODE, "visible_tests": "assert add(1, 2) == 3"}, "field 'visible_tests'"),
    ({**GOOD_CODE, "kind": "codes"}, "field 'kind': must be \"code\" or \"math\""),
    ({**GOOD_MATH, "answer": "many"}, "field 'answer': answer 'many' holds no number"),
    ({**GOOD_MATH, "extra": 1}, "field 'extra': Extra inputs are not permitted"),
])
def test_a_bad_jsonl_line_names_its_line_and_field(tmp_path, line, message):
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps(GOOD_CODE) + "\n\n" + json.dumps(line) + "\n" + json.dumps(GOOD_MATH) + "\n")
    with pytest.raises(TaskFileError) as err:
        load_jsonl_tasks(path)
    assert str(err.value).startswith(f"{path}:3: ") and message in str(err.value)
    assert err.value.line == 3


def test_jsonl_tasks_parse_and_duplicates_are_refused(tmp_path):
    code = parse_task_line(json.dumps(GOOD_CODE))
    assert isinstance(code, CodeTask) and code.visible_tests == ("assert add(1, 2) == 3",)
    assert code.hidden_tests == "assert add(2, 2) == 4\n"
    assert parse_task_line(json.dumps({**GOOD_MATH, "answer": 1234.0})).answer == "1234"
    with pytest.raises(TaskFileError, match="not valid JSON"):
        parse_task_line("{nope", path="f.jsonl", line=9)
    path = tmp_path / "dupes.jsonl"
    path.write_text(json.dumps(GOOD_CODE) + "\n" + json.dumps(GOOD_CODE) + "\n")
    with pytest.raises(TaskFileError, match=r"dupes.jsonl:2: field 'id': 'add' is already used on line 1"):
        load_jsonl_tasks(path)


def _config(tmp_path, **kw) -> RunConfig:
    base = dict(source="humaneval", model="vllm/m@http://127.0.0.1:9/v1", budget_usd=1.0, name="r",
                out=str(tmp_path), ledger=f"sqlite:///{tmp_path / 'ledger.db'}")
    return RunConfig(**{**base, **kw})


def _tasks(n: int) -> list[CodeTask]:
    return [CodeTask(id=f"t{i}", prompt=f"def f{i}():\n", entry_point=f"f{i}") for i in range(n)]


def test_equal_shares_pass_unspent_money_on_and_reopen_with_the_old_cap(tmp_path):
    config = _config(tmp_path)
    ledger = Ledger(config.ledger)
    open_run_accounts(ledger, config, resume=False)
    planner = Planner(ledger, config, _tasks(4))
    units = planner.pending(set())
    first = planner.open(units[0], set())
    assert first.cap_usd == pytest.approx(0.25) and first.accounts == ["r/task/t0"] and not first.resumed
    with ledger.account("r/task/t0").reserve(usd=0.05) as r:
        r.commit(usd=0.05)
    second = planner.open(units[1], {"t0"})  # t0 finished having spent 0.05: the rest is shared by three
    assert second.cap_usd == pytest.approx(0.95 / 3, abs=1e-8)
    third = planner.open(units[2], {"t0"})  # t1 is in flight and holds its whole cap
    assert third.cap_usd == pytest.approx((0.95 - 0.95 / 3) / 2, abs=1e-8)
    # a killed run reopens the in-flight task's account with its cap: never a second account, never a new share
    again = Planner(ledger, config, _tasks(4)).open(units[1], {"t0"})
    assert again.resumed and again.cap_usd == second.cap_usd
    assert [b.name for b in ledger.accounts()].count("r/task/t1") == 1
    # every cap together stays within the run's
    caps = sum(b.budget.usd for b in ledger.accounts() if b.parent == "r")
    assert caps <= 1.0 + 1e-9
    with pytest.raises(RunConfigError, match="already has an account 'r'"):
        open_run_accounts(ledger, config, resume=False)
    ledger.close()


def test_allocate_policy_chunks_code_tasks_under_chunk_accounts(tmp_path):
    config = _config(tmp_path, policy="allocate", search={"chunk": 3})
    ledger = Ledger(config.ledger)
    open_run_accounts(ledger, config, resume=False)
    planner = Planner(ledger, config, _tasks(5))
    units = planner.pending(set())
    assert [u.task_ids for u in units] == [["t0", "t1", "t2"], ["t3", "t4"]]
    job = planner.open(units[0], set())
    assert job.chunk == "r/alloc/0" and job.cap_usd == pytest.approx(0.6)
    tree = {b.name: b.parent for b in ledger.accounts()}
    assert tree["r/task/t0"] == "r/alloc/0" and tree["r/alloc/0"] == "r"
    # a resumed run cuts the same chunks, without the finished tasks
    assert [u.task_ids for u in planner.pending({"t0", "t3"})] == [["t1", "t2"], ["t4"]]
    ledger.close()


def test_resume_keeps_the_saved_settings(tmp_path):
    config = _config(tmp_path)
    assert merge_for_resume(config, {"concurrency": 4, "model": config.model}).concurrency == 4
    with pytest.raises(RunConfigError, match=r"--budget-usd: run.json has 1.0, you passed 2.0"):
        merge_for_resume(config, {"budget_usd": 2.0})
    with pytest.raises(RunConfigError, match="--max-samples"):
        merge_for_resume(config, {"max_samples": 99})
    with pytest.raises(RunConfigError, match="holds no run to resume"):
        prepare_run(out=tmp_path / "nothing", resume=True)
    save_config(config, tmp_path)
    with pytest.raises(RunConfigError, match="already holds a run"):
        prepare_run(out=tmp_path, source="humaneval", model=config.model, budget_usd=1.0)


def test_prices_local_models_get_a_default_with_a_note_and_others_are_refused():
    overrides, note = resolve_prices("local/qwen2.5-coder-1.5b")
    assert overrides["local/qwen2.5-coder-1.5b"]["cpu_second"] == pytest.approx(0.10 / 3600)
    assert "per CPU-hour" in note and "--price-cpu-hour" in note
    assert overrides["sandbox"]["cpu_second"] == pytest.approx(0.10 / 3600) and "sandbox runs" in note
    overrides, note = resolve_prices("vllm/smol@http://127.0.0.1:1/v1", cpu_hour=3.6, sandbox_cpu_hour=0.36)
    assert note is None and overrides["vllm/smol"]["cpu_second"] == pytest.approx(0.001)
    assert overrides["sandbox"]["cpu_second"] == pytest.approx(0.0001)
    from budgetflow import UnpricedModel

    with pytest.raises(UnpricedModel, match="--price-cpu-hour"):
        resolve_prices("vllm/smol@http://127.0.0.1:1/v1")


def test_a_result_line_cut_by_a_kill_is_dropped_and_repaired(tmp_path):
    store = RunDir(tmp_path)
    store.create()
    rec = TaskRecord(id="a/1", kind="code", model="m", strategy="sample", solved=True, reason="solved")
    store.append(rec)
    with open(store.results, "a") as f:
        f.write('{"id": "b", "kind": "co')  # the process died mid-write
    assert list(store.done()) == ["a/1"]
    store.repair()
    store.append(rec.model_copy(update={"id": "c"}))
    assert list(store.done()) == ["a/1", "c"] and store.results.read_text().count("\n") == 2
    assert (tmp_path / store.done()["a/1"].candidates_file).exists()


def test_progress_is_a_bar_on_a_terminal_and_a_line_per_task_otherwise():
    """issue 18: with output piped to a file nothing was printed until the run ended; now one line per task."""
    import io

    from rich.console import Console

    from budgetflow.runs._progress import RunProgress

    tty = io.StringIO()
    console = Console(file=tty, force_terminal=True, width=200)
    with RunProgress(console, total=10, done=2, solved=1, cap_usd=0.5) as bar:
        bar._t0 -= 60  # a minute in: 3 more tasks finished
        bar.update(done=5, solved=3, spent=0.125, left=0.375)
        bar._progress.refresh()
    shown = tty.getvalue()
    for part in ("5/10", "solved", "$0.1250", "$0.3750", "3.0 tasks/min", "ETA 0:01:40"):
        assert part in shown, part
    piped = io.StringIO()
    rec = TaskRecord(id="HumanEval/7", kind="code", model="m", strategy="sample", solved=True, reason="solved",
                     samples=2, spend={"total": {"usd": 0.0125}})
    with RunProgress(Console(file=piped), total=10, done=0, solved=0, cap_usd=1.0) as bar:  # not a terminal
        bar._t0 -= 30
        bar.update(done=1, solved=1, spent=0.1, left=0.9, finished=[rec])
    line = piped.getvalue().strip()
    assert line.count("\n") == 0 and line.startswith("[1/10] HumanEval/7: solved (solved, 2 sample(s))")
    for part in ("$0.0125", "spent $0.1", "left $0.9", "2.0 tasks/min", "ETA 0:04:30"):
        assert part in line, part


def test_concurrency_is_sized_from_the_engines_measured_speed():
    """issue 18: one task at a time left a batching engine mostly idle; the default now comes from its speed."""
    from budgetflow.llm import Throughput
    from budgetflow.runs._concurrency import pick_concurrency

    class Engine:  # only the measured speed matters here: a real engine's Throughput, filled as calibration does
        throughput = Throughput(step_1=0.10, step_8=0.12, calibrated=True)  # ~6.7x the tokens/s at 8

    tasks, why = pick_concurrency(Engine(), wave_size=1)
    assert 5 <= tasks <= 8 and "sequences in flight" in why
    assert pick_concurrency(Engine(), wave_size=4)[0] == -(-tasks // 4)  # waves of 4 fill it with fewer tasks
    Engine.throughput = Throughput(step_1=0.10, step_8=0.80, calibrated=True)  # no batching gain: one at a time
    assert pick_concurrency(Engine(), wave_size=1)[0] == 1
    assert pick_concurrency(object(), wave_size=1)[0] == 1  # a remote model: nothing measured


@pytest.mark.parametrize("strategy", ["sample", "best-of-n", "allocate"])
def test_code_sampling_checks_the_tasks_own_tests_whatever_the_registration_order(strategy, tmp_path):
    """Regression found measuring the demo (issue 18): after the redesign a solver that named no verifier got the
    first one registered for its kind, which (by import order) was the model-written tests — the demo then sampled
    until a generated test passed and solved 4/20 instead of 18/20. The main job's strategies name theirs."""
    from budgetflow.runs import prepare_run
    from budgetflow.runs._worker import WorkerContext
    from budgetflow.verifiers import UnitTestVerifier

    config, _, _ = prepare_run(out=tmp_path / "r", source="humaneval", limit=2, model="local/smollm2-135m",
                               budget_usd=0.01, strategy=strategy, concurrency=1)
    worker = WorkerContext(config)
    worker._llm = object()  # the verifier is chosen without starting an engine
    try:
        chosen = worker.verifier_for("sample" if strategy == "allocate" else strategy, "code")
        assert isinstance(chosen, UnitTestVerifier)
    finally:
        worker.close()
