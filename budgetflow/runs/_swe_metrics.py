"""What a repo task's run measured, for results.jsonl and report.html: each agent's share of the task's spend,
prompt sizes, what the model's context forced (shrunk prompts, refusals), why each trajectory stopped, how the
budget was split, and whether the selected patch breaks regression tests.

Read from what a worker already hands the run directory: the record's spend by agent, the candidates (each
trajectory's outcome rides in its meta) and the log's one ``metrics: {...}`` line (the graph's own measurements)."""

from __future__ import annotations

import html
import json
from collections import Counter

from ..budget import format_usd
from ._records import TaskArtifacts, TaskRecord

AGENTS = ("tester", "solver", "verifier", "selector")


def swe_metrics(record: TaskRecord, artifacts: TaskArtifacts) -> dict:
    """The measurements of one repo task (empty for other kinds)."""
    if record.kind != "repo":
        return {}
    graph: dict = {}
    for line in artifacts.log:
        if line.startswith("metrics: "):
            try:
                graph = json.loads(line.removeprefix("metrics: "))
            except ValueError:
                pass
    total = record.spend.get("total", {})
    unit = "usd" if total.get("usd") else "cpu_seconds"
    whole = float(total.get(unit, 0.0)) or 0.0
    shares = {a: round(float(record.spend.get(a, {}).get(unit, 0.0)) / whole, 4) if whole else 0.0 for a in AGENTS}
    trajectories = []
    prompts: list[int] = []
    shrunk = refused = 0
    for cand in artifacts.candidates:
        if "stop" not in cand and "turns" not in cand:
            continue
        sizes = [int(x) for x in cand.get("prompt_tokens", [])]
        prompts += sizes
        events = cand.get("context", [])
        shrunk += sum("shrunk" in e or "cut to" in e for e in events)
        refused += sum("refused" in e for e in events)
        verdict = cand.get("verdict") or {}
        trajectories.append({"id": cand.get("source", cand.get("id")), "stop": cand.get("stop") or "?",
                             "turns": cand.get("turns", 0), "patch": bool(str(cand.get("text", "")).strip()),
                             "prompt_tokens_max": max(sizes, default=0), "located": cand.get("located", [])[:3],
                             "cap": cand.get("cap", {}), "breaks": (verdict.get("data") or {}).get("regressions", 0),
                             "selected": bool(cand.get("selected"))})
    for agent in ("tester", "selector"):
        info = graph.get(agent, {})
        if info.get("prompt_tokens"):
            prompts.append(int(info["prompt_tokens"]))
        refused += "refused" in str(info.get("context", ""))
    selected = next((t for t in trajectories if t["selected"]), None)
    return {
        "shares": shares, "share_unit": unit,
        "prompt_tokens": {"max": max(prompts, default=0), "mean": round(sum(prompts) / len(prompts), 1)
                          if prompts else 0.0, "prompts": len(prompts)},
        "context": {"shrunk": shrunk, "refused": refused},
        "stops": dict(Counter(t["stop"] for t in trajectories)),
        "trajectories": trajectories,
        "waves": graph.get("waves", []), "tester": graph.get("tester", {}), "selector": graph.get("selector", {}),
        "selected_breaks": selected["breaks"] if selected else None,
    }


def swe_html(records: list[TaskRecord]) -> list[str]:
    """The report's SWE section: mean agent shares, prompt sizes, context events and trajectory stops over the repo
    tasks, then one row per task."""
    rows = [r for r in records if r.kind == "repo" and r.metrics]
    if not rows:
        return []
    e = html.escape
    mean = {a: sum(r.metrics["shares"].get(a, 0.0) for r in rows) / len(rows) for a in AGENTS}
    stops: Counter = Counter()
    for r in rows:
        stops.update(r.metrics.get("stops", {}))
    peak = max(r.metrics["prompt_tokens"]["max"] for r in rows)
    refused = sum(r.metrics["context"]["refused"] for r in rows)
    shrunk = sum(r.metrics["context"]["shrunk"] for r in rows)
    parts = ["<h2>SWE agents</h2>",
             "<p class='sub'>Share of each task's spend by agent (mean over the repo tasks): " + ", ".join(
                 f"{a} {v:.0%}" for a, v in mean.items()) + f". Largest prompt sent: {peak} tokens; prompts shrunk "
             f"to fit the context: {shrunk}; refused (never sent): {refused}. Trajectories stopped by: " + (", ".join(
                 f"{e(k)} {v}" for k, v in stops.most_common()) or "-") + ".</p>",
             "<table><tr><th>task</th><th>tester</th><th>solver</th><th>verifier</th><th>selector</th>"
             "<th>prompt tokens (max / mean)</th><th>context shrunk / refused</th><th>trajectories (stop, turns, "
             "patch)</th><th>selected breaks</th><th>spend</th></tr>"]
    for r in rows:
        m = r.metrics
        trajs = "; ".join(f"{t['id']}: {t['stop']}, {t['turns']}t{', patch' if t['patch'] else ''}"
                          for t in m.get("trajectories", []))
        breaks = "-" if m.get("selected_breaks") is None else str(m["selected_breaks"])
        parts.append(f"<tr><td><code>{e(r.id)}</code></td>" + "".join(
            f"<td class='num'>{m['shares'].get(a, 0.0):.0%}</td>" for a in AGENTS)
            + f"<td class='num'>{m['prompt_tokens']['max']} / {m['prompt_tokens']['mean']:.0f}</td>"
            f"<td class='num'>{m['context']['shrunk']} / {m['context']['refused']}</td><td>{e(trajs)}</td>"
            f"<td class='num'>{breaks}</td><td class='num'>{format_usd(r.usd)}</td></tr>")
    parts.append("</table>")
    return parts
