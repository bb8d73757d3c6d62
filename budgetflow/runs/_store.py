"""The output directory of a run:

    DIR/run.json          the settings (resume uses them)
    DIR/results.jsonl     one line per finished task, appended and fsynced as each finishes
    DIR/results.csv       the same, flat (rewritten at the end)
    DIR/predictions.jsonl repo tasks' patches as SWE-bench predictions (instance_id, model_name_or_path,
                          model_patch): appended as each finishes, rewritten (one line per instance) at the end
    DIR/ledger.db         the SQLite ledger (unless --ledger names another)
    DIR/candidates/*.json every candidate of a task, and which was selected
    DIR/logs/*.log        what happened to a task
    DIR/report.html       the self-contained report
    DIR/selective.json    the risk-coverage curve and utility by confidence threshold (selective answering)
    DIR/tasks.json        the run's task ids, in order

Results are the run's memory: a task with a line in results.jsonl is done and never run again. A line is written
only after its candidates and log files, so a line always has its files; a line cut short by a kill is dropped on the
next open (the task is simply redone).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from pathlib import Path

from ..tasks import swebench_prediction, write_swebench_predictions
from ._records import TaskArtifacts, TaskRecord
from ._swe_metrics import swe_metrics

RESULTS = "results.jsonl"
PREDICTIONS = "predictions.jsonl"
CSV = "results.csv"
REPORT = "report.html"
SELECTIVE = "selective.json"


def safe_name(task_id: str) -> str:
    """A file name for a task id (ids hold slashes, e.g. HumanEval/0), unique by a short hash."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", task_id).strip("._")[:80] or "task"
    return f"{stem}-{hashlib.sha1(task_id.encode()).hexdigest()[:6]}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class RunDir:
    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self.results = self.root / RESULTS
        self.csv = self.root / CSV
        self.predictions = self.root / PREDICTIONS
        self.report = self.root / REPORT
        self.selective = self.root / SELECTIVE
        self.candidates = self.root / "candidates"
        self.logs = self.root / "logs"

    def create(self) -> None:
        for d in (self.root, self.candidates, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        _fsync_dir(self.root)

    def write_task_ids(self, ids: list[str]) -> None:
        """The run's task ids in order (what "done / total" counts against)."""
        atomic_write(self.root / "tasks.json", json.dumps({"ids": ids}) + "\n")

    def task_ids(self) -> list[str]:
        try:
            return json.loads((self.root / "tasks.json").read_text())["ids"]
        except (OSError, ValueError, KeyError):
            return []

    def has_run(self) -> bool:
        return (self.root / "run.json").exists()

    # ------------------------------------------------------------------ results

    def read(self) -> list[TaskRecord]:
        """Every complete result line, in file order (a later line for the same id wins in `done()`)."""
        if not self.results.exists():
            return []
        records = []
        for line in self.results.read_bytes().split(b"\n"):
            if not line.strip():
                continue
            try:
                records.append(TaskRecord.model_validate_json(line))
            except ValueError:
                continue  # a line cut short by a kill: that task is redone
        return records

    def done(self, *, retry_errors: bool = False) -> dict[str, TaskRecord]:
        out: dict[str, TaskRecord] = {}
        for rec in self.read():
            out[rec.id] = rec
        if retry_errors:
            out = {k: v for k, v in out.items() if v.reason != "error"}
        return out

    def repair(self) -> None:
        """Cut a partial last line (the process was killed mid-write) so appends start on a fresh line."""
        if not self.results.exists():
            return
        data = self.results.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with open(self.results, "r+b") as f:
                f.truncate(keep)
                f.flush()
                os.fsync(f.fileno())

    def append(self, record: TaskRecord, artifacts: TaskArtifacts | None = None) -> TaskRecord:
        """Write the task's files, then its result line (fsynced): once this returns, the task is done for good."""
        name = safe_name(record.id)
        cand, log = self.candidates / f"{name}.json", self.logs / f"{name}.log"
        artifacts = artifacts or TaskArtifacts()
        atomic_write(cand, json.dumps({"id": record.id, "selected": record.selected,
                                       "candidates": artifacts.candidates}, indent=2) + "\n")
        atomic_write(log, "\n".join(artifacts.log) + "\n")
        update = {"candidates_file": f"candidates/{cand.name}", "log_file": f"logs/{log.name}"}
        if record.kind == "repo" and not record.metrics:
            update["metrics"] = swe_metrics(record, artifacts)
        record = record.model_copy(update=update)
        line = record.model_dump_json() + "\n"
        with open(self.results, "a") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        if record.kind == "repo":  # a later line of the same instance wins, in the harness as in results.jsonl
            with open(self.predictions, "a") as f:
                f.write(json.dumps(swebench_prediction(record.id, record.model, record.selected)) + "\n")
                f.flush()
                os.fsync(f.fileno())
        return record

    def write_predictions(self, records: list[TaskRecord]) -> Path | None:
        """predictions.jsonl from the repo tasks' records, one line per instance (None when there are none)."""
        rows = [swebench_prediction(r.id, r.model, r.selected) for r in records if r.kind == "repo"]
        return write_swebench_predictions(rows, self.predictions) if rows else None

    def write_selective(self, selective) -> Path | None:
        """DIR/selective.json from a `Selective` (nothing when no task was scored)."""
        if selective is None:
            return None
        atomic_write(self.selective, selective.model_dump_json(indent=2) + "\n")
        return self.selective

    def write_csv(self, records: list[TaskRecord]) -> Path:
        cols = ["id", "kind", "model", "strategy", "solved", "solved_visible", "confidence", "abstained", "reason",
                "samples", "usd", "output_tokens", "cpu_seconds", "calls", "scoring_usd", "scoring_cpu_seconds",
                "cap_usd", "wall_s", "resumed", "worker", "error", "candidates_file", "log_file"]
        tmp = self.csv.with_name(self.csv.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for r in records:
                total = r.spend.get("total", {})
                w.writerow([r.id, r.kind, r.model, r.strategy, r.solved, r.solved_visible, r.confidence, r.abstained,
                            r.reason, r.samples, total.get("usd", 0.0), total.get("output_tokens", 0), total.get("cpu_seconds", 0.0),
                            total.get("calls", 0), r.scoring.get("usd", 0.0), r.scoring.get("cpu_seconds", 0.0),
                            r.cap_usd, round(r.wall_s, 3), r.resumed, r.worker, r.error or "", r.candidates_file,
                            r.log_file])
        os.replace(tmp, self.csv)
        self.write_predictions(records)  # the flat files of a run are rewritten together
        return self.csv
