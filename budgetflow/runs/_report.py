"""`DIR/report.html`: one self-contained file (plots inlined as base64 PNG, no scripts, no external URLs) built from
results.jsonl and the ledger: solved against spend over the run, spend by agent, by model and by task, the scoring
spend apart from the run's, and a per-task table linking each task's candidates and log.

    budgetflow report DIR      # rebuild it at any time (also while a run is going, or after a kill)
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..budget import Amounts, Ledger, SpendIndex, format_usd
from ._config import RunConfig, load_config
from ._records import TaskRecord
from ._selective import run_selective
from ._selective_html import selective_html
from ._store import RunDir, atomic_write
from ._cascade_batch import cascade_html
from ._swe_metrics import swe_html

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d232a;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde2e8;padding-bottom:4px}
.sub{color:#5b6570;font-size:13px} .cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}
.card{border:1px solid #dde2e8;border-radius:8px;padding:8px 12px;min-width:120px}
.card b{display:block;font-size:18px} .card span{font-size:12px;color:#5b6570}
.ok{color:#1a7f37} .bad{color:#cf222e} .muted{color:#8b949e}
.plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:14px}
figure{margin:0;border:1px solid #dde2e8;border-radius:8px;padding:8px} figure img{width:100%;height:auto}
figcaption{font-size:12px;color:#5b6570}
table{border-collapse:collapse;font-size:12.5px;width:100%} th,td{border-bottom:1px solid #eef1f4;padding:4px 6px;
text-align:left;vertical-align:top} th{background:#f6f8fa;position:sticky;top:0} td.num{text-align:right;
font-variant-numeric:tabular-nums} code{font-size:12px} .note{font-size:13px;background:#fff8c5;padding:6px 10px;
border-radius:6px;margin:6px 0}
"""




def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _plots(records: list[TaskRecord], by_agent: dict[str, float], by_model: dict[str, float],
           task_usd: dict[str, float], total: int) -> list[tuple[str, str, str]]:
    """(title, caption, base64 PNG) for each plot; [] if matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    out = []
    timeline = sorted(records, key=lambda r: r.finished)
    xs, ys, spent, solved = [0.0], [0], 0.0, 0
    for r in timeline:
        spent += task_usd.get(r.id, r.usd)
        solved += bool(r.solved)
        xs.append(spent)
        ys.append(solved)
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.step(xs, ys, where="post", color="#2f81f7", lw=2)
    ax.scatter(xs[1:], ys[1:], s=8, color="#2f81f7")
    ax.set_xlabel("run spend so far (USD)")
    ax.set_ylabel("tasks solved (hidden tests)")
    ax.set_ylim(0, max(1, total))
    ax.set_xlim(left=0)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    out.append(("solved vs spend", "cumulative tasks solved against the run's cumulative spend, in the order tasks "
                "finished", _png(fig)))
    for title, data, color in (("spend by agent", by_agent, "#8250df"), ("spend by model", by_model, "#1a7f37")):
        items = sorted(data.items(), key=lambda kv: -kv[1]) or [("none", 0.0)]
        fig, ax = plt.subplots(figsize=(6, max(1.6, 0.45 * len(items) + 0.8)))
        ax.barh([k for k, _ in items][::-1], [v for _, v in items][::-1], color=color)
        ax.set_xlabel("USD")
        ax.grid(axis="x", alpha=0.3)
        out.append((title, f"{title.split()[-1]}: what the run's accounts under it were charged (from the ledger)",
                    _png(fig)))
    shown = sorted(records, key=lambda r: -task_usd.get(r.id, r.usd))[:40]
    fig, ax = plt.subplots(figsize=(6, max(1.8, 0.22 * len(shown) + 0.8)))
    colors = ["#1a7f37" if r.solved else ("#cf222e" if r.solved is False else "#8b949e") for r in shown]
    ax.barh([r.id for r in shown][::-1], [task_usd.get(r.id, r.usd) for r in shown][::-1], color=colors[::-1])
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel("USD (green: solved, red: not solved, grey: not scored)")
    ax.grid(axis="x", alpha=0.3)
    out.append(("spend by task", f"the {len(shown)} most expensive tasks", _png(fig)))
    return out


def _ledger_view(config: RunConfig, ledger: Ledger | None, url: str | None):
    """(balances by name, children index, verify summary, ok) or Nones when the ledger cannot be read."""
    own = None
    try:
        if ledger is None:
            ledger = own = Ledger(url or config.ledger, create=False, recover=False)
        balances = ledger.accounts()
        check = ledger.verify()
        return {b.name: b for b in balances}, SpendIndex(balances), check.summary(), check.ok
    except Exception as err:  # the report still shows results.jsonl
        return None, None, f"ledger not readable: {type(err).__name__}: {err}", False
    finally:
        if own is not None:
            own.close()


@dataclass
class _Totals:
    """What the report shows, gathered once: spend by task, agent and model (from the ledger when it can be read,
    else from the result lines), the run's and scoring's totals, and the counts."""

    task_usd: dict[str, float] = field(default_factory=dict)
    by_agent: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    agent_amounts: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(float)))
    by_model: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    split: dict[str, dict[str, Amounts]] = field(default_factory=dict)
    spent: float = 0.0
    held: float = 0.0
    left: float = 0.0
    scoring_usd: float = 0.0
    scoring_cpu: float = 0.0
    total: int = 0
    solved: int = 0
    scored: int = 0


def _aggregate(config: RunConfig, store: RunDir, records: list[TaskRecord], balances, children) -> _Totals:
    t = _Totals()
    for r in records:
        parts = children.parts(r.account) if children is not None else {}
        if parts:
            t.split[r.id] = parts
        spend = {k: v.model_dump() for k, v in parts.items()} if parts else r.spend
        t.task_usd[r.id] = parts["total"].usd if parts else r.usd
        for agent, amounts in spend.items():
            if agent != "total":
                t.by_agent[agent] += amounts.get("usd", 0.0)
                for k, v in amounts.items():
                    t.agent_amounts[agent][k] += v
        t.by_model[r.model] += t.task_usd[r.id]
    run_bal = balances.get(config.run_account) if balances else None
    scoring_bal = balances.get(config.scoring_account) if balances else None
    t.spent = run_bal.committed.usd if run_bal else sum(t.task_usd.values())
    t.held = run_bal.reserved.usd if run_bal else 0.0
    t.left = run_bal.left.usd if run_bal else max(0.0, config.budget_usd - t.spent)
    t.scoring_usd = scoring_bal.committed.usd if scoring_bal else sum(r.scoring.get("usd", 0.0) for r in records)
    t.scoring_cpu = scoring_bal.committed.cpu_seconds if scoring_bal else sum(
        r.scoring.get("cpu_seconds", 0.0) for r in records)
    t.total = _task_count(store, len(records))
    t.solved = sum(1 for r in records if r.solved)
    t.scored = sum(1 for r in records if r.solved is not None)
    return t


def build_report(out: str | Path, *, ledger: Ledger | None = None, ledger_url: str | None = None) -> Path:
    """Write DIR/report.html from DIR/results.jsonl and the run's ledger; returns its path."""
    store = RunDir(out)
    config = load_config(out)
    records = sorted(store.done().values(), key=lambda r: r.finished)
    balances, children, verify, verify_ok = _ledger_view(config, ledger, ledger_url)
    t = _aggregate(config, store, records, balances, children)
    plots = _plots(records, dict(t.by_agent), dict(t.by_model), t.task_usd, t.total)
    selective = run_selective(records, penalty=config.wrong_penalty, abstain_unknown=config.abstain_unknown,
                              threshold=config.abstain_below)
    store.write_selective(selective)  # the report and selective.json always agree
    parts = _header_html(config, t, records, verify, verify_ok) + _plots_html(plots) + selective_html(selective) \
        + _spend_html(config, t) + swe_html(records) + cascade_html(records, out) + _tasks_html(records, t)
    parts.append(f"<p class='sub'>Built {dt.datetime.now().strftime('%Y-%m-%d %H:%M:%S')} by "
                 f"<code>budgetflow report</code> from results.jsonl and the ledger.</p></body></html>")
    atomic_write(store.report, "\n".join(parts) + "\n")
    return store.report


def _header_html(config: RunConfig, t: _Totals, records: list[TaskRecord], verify: str, verify_ok: bool) -> list[str]:
    e = html.escape
    cards = [
        ("solved", f"{t.solved} / {t.scored}" if t.scored else "-", "hidden tests, of the tasks scored"),
        ("done", f"{len(records)} / {t.total}", "tasks with a result"),
        ("spent", format_usd(t.spent),
         f"of the {format_usd(config.budget_usd)} cap" + (f" (+{format_usd(t.held)} held)" if t.held else "")),
        ("left", format_usd(t.left), "of the run's budget"),
        ("scoring", format_usd(t.scoring_usd) if t.scoring_usd else f"{t.scoring_cpu:.2f} CPU-s",
         "hidden tests, outside the budget"),
        ("cost / solved", format_usd(t.spent / t.solved) if t.solved else "-", "run spend per solved task"),
    ]
    limit = f" (limit {config.limit})" if config.limit else ""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>budgetflow run {e(config.name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>budgetflow run <code>{e(config.name)}</code></h1>",
        f"<div class='sub'>source <code>{e(config.source)}</code>{limit}"
        f" · model <code>{e(config.model)}</code> · strategy {e(config.strategy or 'default per kind')}"
        f" · policy {e(config.policy)} · executor {e(config.executor)} · started "
        f"{dt.datetime.fromtimestamp(config.created).strftime('%Y-%m-%d %H:%M:%S')}</div>",
        "<div class='cards'>" + "".join(
            f"<div class='card'><span>{e(k)}</span><b>{e(v)}</b><span>{e(s)}</span></div>" for k, v, s in cards)
        + "</div>",
        f"<div class='sub'>ledger <code>{e(safe_url(config.ledger))}</code>: "
        f"<span class='{'ok' if verify_ok else 'bad'}'>{e(verify)}</span></div>",
    ]
    if config.price_note:
        parts.append(f"<div class='note'>{e(config.price_note)}</div>")
    if config.abstain_below is not None:
        withheld = sum(1 for r in records if r.abstained)
        parts.append(f"<div class='note'>selective answering: answers with confidence below "
                     f"{config.abstain_below:g} are withheld ({withheld} task(s) abstained; a wrong answer costs "
                     f"{config.wrong_penalty:g}). Their answers are kept and scored below, for the audit.</div>")
    if len(records) < t.total:
        parts.append(f"<div class='note'>{t.total - len(records)} task(s) have no result yet: finish the run with "
                     f"<code>budgetflow run --resume --out {e(config.out)}</code></div>")
    return parts


def _plots_html(plots: list[tuple[str, str, str]]) -> list[str]:
    e = html.escape
    if not plots:
        return ["<h2>Plots</h2>", "<p class='muted'>matplotlib is not installed: no plots (pip install matplotlib).</p>"]
    return ["<h2>Plots</h2>", "<div class='plots'>" + "".join(
        f"<figure><img alt='{e(title)}' src='data:image/png;base64,{b}'><figcaption><b>{e(title)}</b>: {e(c)}"
        f"</figcaption></figure>" for title, c, b in plots) + "</div>"]


def _spend_html(config: RunConfig, t: _Totals) -> list[str]:
    e = html.escape
    dims = ("input_tokens", "output_tokens", "cpu_seconds", "gpu_seconds", "calls")
    whole = ("input_tokens", "output_tokens", "calls")
    rows = "".join(
        f"<tr><td>{e(k)}</td><td class='num'>{format_usd(v)}</td>" + "".join(
            f"<td class='num'>{t.agent_amounts[k].get(d, 0):,.{0 if d in whole else 2}f}</td>" for d in dims)
        + "</tr>" for k, v in sorted(t.by_agent.items(), key=lambda kv: (-kv[1], kv[0])))
    models = "".join(f"<tr><td><code>{e(k)}</code></td><td class='num'>{format_usd(v)}</td></tr>"
                     for k, v in t.by_model.items())
    return ["<h2>Spend</h2><table><tr><th>by agent / kind</th><th>USD</th><th>input tokens</th>"
            "<th>output tokens</th><th>CPU-s</th><th>GPU-s</th><th>calls</th></tr>" + rows + "</table><br>",
            "<table><tr><th>by model</th><th>USD</th></tr>" + models
            + f"<tr><td>hidden-test scoring (<code>{e(config.scoring_account)}</code>, outside the budget)</td>"
            f"<td class='num'>{format_usd(t.scoring_usd)} ({t.scoring_cpu:.2f} CPU-s)</td></tr></table>"]


def _tasks_html(records: list[TaskRecord], t: _Totals) -> list[str]:
    e = html.escape
    parts = ["<h2>Tasks</h2><table><tr><th>#</th><th>task</th><th>kind</th><th>solved (hidden)</th>"
             "<th>visible</th><th>confidence</th><th>stopped</th><th>samples</th><th>spend</th><th>split</th><th>scoring</th>"
             "<th>wall s</th><th>worker</th><th>files</th></tr>"]
    for i, r in enumerate(sorted(records, key=lambda r: r.finished), start=1):
        verdict = ("<span class='ok'>yes</span>" if r.solved else "<span class='bad'>no</span>"
                   if r.solved is False else "<span class='muted'>-</span>")
        visible = "-" if r.solved_visible is None else ("yes" if r.solved_visible else "no")
        agents = t.split.get(r.id) or {k: Amounts(**v) for k, v in r.spend.items()}
        detail = ", ".join(f"{k} {format_usd(v.usd)}" for k, v in agents.items() if k != "total")
        stopped = e(r.reason) + (f" <span class='bad'>{e(r.error[:120])}</span>" if r.error else "") + (
            " <span class='muted'>(resumed)</span>" if r.resumed else "")
        sc = r.scoring.get("usd") or 0.0
        conf = "-" if r.confidence is None else f"{r.confidence:.2f}"
        if r.abstained:
            conf += " <span class='muted'>(abstained)</span>"
        sc_text = format_usd(sc) if sc else f"{r.scoring.get('cpu_seconds', 0.0):.2f} CPU-s"
        links = " ".join(f"<a href='{e(p)}'>{n}</a>" for n, p in (("candidates", r.candidates_file),
                                                                   ("log", r.log_file)) if p)
        parts.append(
            f"<tr><td class='num'>{i}</td><td><code>{e(r.id)}</code></td><td>{e(r.kind)}</td><td>{verdict}</td>"
            f"<td>{visible}</td><td class='num'>{conf}</td><td>{stopped}</td><td class='num'>{r.samples}</td>"
            f"<td class='num'>{format_usd(t.task_usd.get(r.id, r.usd))}</td><td>{e(detail)}</td>"
            f"<td class='num'>{e(sc_text)}</td><td class='num'>{r.wall_s:.1f}</td><td>{e(r.worker)}</td>"
            f"<td>{links}</td></tr>")
    parts.append("</table>")
    return parts


def _task_count(store: RunDir, done: int) -> int:
    ids = store.task_ids()
    return len(ids) if ids else done


def safe_url(url: str) -> str:
    """The ledger URL without a password."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url
