"""`--strategy cascade` in a batch run: prices for the models its stages name, the calibration mode, and the
report's cascade section.

Calibration (`--set calibrate=N`): the first N code tasks of the source run every stage (`run_all`, each stage on
its own account), and the other code tasks wait. When the N are recorded, the driver learns the cascade from their
per-stage outcomes (`search.learn_cascade`: the rule is in its module doc), with the run's per-task share of what is
left as the cost bound, writes it to DIR/cascade.json, and hands it to every later task (`order`). A resumed run
reads DIR/cascade.json back (so every task after calibration runs the same cascade); calibration tasks killed in
flight are rerun in calibration mode first.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from pathlib import Path

from ..budget import Account, format_usd
from ..search import CascadeSettings, LearnedCascade, learn_cascade, observation_from
from ..tasks import Task, kind_of
from ._config import RunConfig
from ._policy import Unit
from ._pricing import resolve_prices
from ._records import TaskRecord
from ._solving import settings_for, strategy_for
from ._store import RunDir, atomic_write

CASCADE_FILE = "cascade.json"


def cascade_settings(config: RunConfig) -> CascadeSettings | None:
    """The run's cascade settings, if its code tasks run the cascade."""
    if strategy_for(config, "code") != "cascade":
        return None
    settings = settings_for(config, "cascade")
    assert isinstance(settings, CascadeSettings)
    return settings


def price_stage_models(config: RunConfig) -> list[str]:
    """Price the models the cascade's stages name besides the run's (a local one at the default engine-hour
    price, said; a remote one from LiteLLM's map, or UnpricedModel saying which --prices entry to add)."""
    settings = cascade_settings(config)
    others = {s.model for s in settings.stages if s.model} - {config.model} if settings is not None else set()
    notes: list[str] = []
    for model in sorted(others):
        overrides, note = resolve_prices(model)
        config.prices.update({k: v for k, v in overrides.items() if k not in config.prices})
        if note:
            notes.append(f"cascade stage model {note}")
    return notes


class CascadeCalibration:
    """The driver's side of `calibrate=N`: which jobs may start, and the settings each job runs with."""

    def __init__(self, settings: CascadeSettings, tasks: list[Task], store: RunDir):
        self.settings = settings
        code = [t.task_id for t in tasks if kind_of(t) == "code"]
        self.calibration = code[:settings.calibrate]
        self.waiting = set(code[settings.calibrate:])
        self.store = store
        self.path = store.root / CASCADE_FILE
        self.learned: LearnedCascade | None = None
        if self.path.exists():
            self.learned = LearnedCascade.model_validate(json.loads(self.path.read_text())["learned"])

    @classmethod
    def for_run(cls, config: RunConfig, tasks: list[Task], store: RunDir) -> "CascadeCalibration | None":
        settings = cascade_settings(config)
        if settings is None or settings.calibrate == 0:
            return None
        return cls(settings, tasks, store)

    def may_start(self, unit: Unit, finished: set[str], run_account: Account) -> bool:
        """Calibration tasks start at once; the others once calibration is recorded (learning then)."""
        if self.learned is not None or not self.waiting.intersection(unit.task_ids):
            return True
        if not all(i in finished for i in self.calibration):
            return False
        self.learn(run_account, left_tasks=len(self.waiting - finished))
        return True

    def learn(self, run_account: Account, left_tasks: int) -> LearnedCascade:
        records = self.store.done()
        stages = list(range(1, len(self.settings.stages) + 1))
        labels = {i: s.label() for i, s in enumerate(self.settings.stages, start=1)}
        observed = [observation_from(records[i].metrics.get("cascade", {}), stages)
                    for i in self.calibration if i in records]
        complete = [o for o in observed if o is not None]
        left = run_account.balance().left.usd
        budget = left / left_tasks if left_tasks else None
        if complete:
            self.learned = learn_cascade(complete, stages, labels=labels, budget_usd=budget,
                                         worth_usd=self.settings.worth_usd,
                                         excluded=len(self.calibration) - len(complete))
        else:
            self.learned = LearnedCascade(order=stages, expected_solved=0.0, expected_usd=0.0, tasks=0,
                                          excluded=len(self.calibration),
                                          rule="no calibration task ran every stage to its end: the stages as given")
        atomic_write(self.path, json.dumps({"calibration_tasks": self.calibration, "labels": labels,
                                            "budget_per_task_usd": budget,
                                            "learned": self.learned.model_dump()}, indent=2) + "\n")
        return self.learned

    def job_settings(self, task_ids: list[str]) -> dict:
        """Settings the job runs with beyond the run's: calibration mode, or the learned order."""
        if set(task_ids) <= set(self.calibration):
            return {"run_all": True, "order": None}
        if self.learned is not None and self.waiting.intersection(task_ids):
            return {"run_all": False, "order": self.learned.order}
        return {}


def cascade_html(records: list[TaskRecord], out: str | Path) -> list[str]:
    """The report's cascade section: the learned mixture and its calibration table, then what each configuration
    cost and solved over the run, then which stage solved each task."""
    rows = [r for r in records if r.metrics.get("cascade")]
    if not rows:
        return []
    e = html.escape
    parts = ["<h2>Cascade</h2>"]
    path = Path(out) / CASCADE_FILE
    if path.exists():
        saved = json.loads(path.read_text())
        learned = LearnedCascade.model_validate(saved["learned"])
        labels = saved.get("labels", {})
        parts.append(
            f"<p class='sub'>Learned on {learned.tasks} calibration task(s)"
            + (f" ({learned.excluded} left out: a stage did not finish)" if learned.excluded else "")
            + f": <b>{e(' → '.join(f'stage{n} {labels.get(str(n), n)}' for n in learned.order))}</b>, expected "
            f"{learned.expected_solved:.0%} solved (visible tests) at {format_usd(learned.expected_usd)} per task. "
            f"Rule: {e(learned.rule)}.</p>")
        parts.append("<table><tr><th>calibration: stage</th><th>config</th><th>tasks</th><th>passed</th>"
                     "<th>pass rate</th><th>mean cost</th></tr>" + "".join(
                         f"<tr><td>stage{c.stage}</td><td><code>{e(c.config)}</code></td><td class='num'>{c.tasks}"
                         f"</td><td class='num'>{c.passed}</td><td class='num'>{c.pass_rate:.0%}</td>"
                         f"<td class='num'>{format_usd(c.mean_usd)}</td></tr>" for c in learned.table)
                     + "</table><br>")
    per: dict[tuple[int, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in rows:
        cascade = r.metrics["cascade"]
        for st in cascade["stages"]:
            acc = per[(st["stage"], st["config"])]
            acc["ran"] += 1
            acc["usd"] += st["usd"]
            acc["samples"] += st["samples"]
            acc["solved_by"] += cascade.get("solved_by") == st["stage"]
    parts.append("<table><tr><th>configuration</th><th>tasks it ran on</th><th>samples</th><th>tasks it solved "
                 "(first pass)</th><th>spend</th></tr>" + "".join(
                     f"<tr><td>stage{n} <code>{e(cfg)}</code></td><td class='num'>{a['ran']:.0f}</td>"
                     f"<td class='num'>{a['samples']:.0f}</td><td class='num'>{a['solved_by']:.0f}</td>"
                     f"<td class='num'>{format_usd(a['usd'])}</td></tr>" for (n, cfg), a in sorted(per.items()))
                 + "</table><br>")
    parts.append("<table><tr><th>task</th><th>mode</th><th>stages run (samples, visible pass, cost)</th>"
                 "<th>solved by</th><th>solved (hidden)</th></tr>")
    for r in rows:
        c = r.metrics["cascade"]
        ran = "; ".join(f"stage{s['stage']} {s['config']}: {s['samples']}, {'pass' if s['passed'] else 'no'}, "
                        f"{format_usd(s['usd'])}" for s in c["stages"])
        by = f"stage{c['solved_by']}" if c.get("solved_by") else "-"
        parts.append(f"<tr><td><code>{e(r.id)}</code></td><td>{e(c.get('mode', ''))}</td><td>{e(ran)}</td>"
                     f"<td>{by}</td><td>{'-' if r.solved is None else 'yes' if r.solved else 'no'}</td></tr>")
    parts.append("</table>")
    return parts


__all__ = ["CASCADE_FILE", "CascadeCalibration", "cascade_html", "cascade_settings", "price_stage_models"]
