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
from pathlib import Path

from ..budget import Amounts, Ledger
from .config import RunConfig, load_config
from .records import TaskRecord
from .spend import children_index, split_spend
from .store import RunDir, atomic_write

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


def _money(x: float) -> str:
    return f"${x:,.6f}" if x < 0.01 else f"${x:,.4f}"


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
        return {b.name: b for b in balances}, children_index(balances), check.summary(), check.ok
    except Exception as err:  # the report still shows results.jsonl
        return None, None, f"ledger not readable: {type(err).__name__}: {err}", False
    finally:
        if own is not None:
            own.close()


def build_report(out: str | Path, *, ledger: Ledger | None = None, ledger_url: str | None = None) -> Path:
    """Write DIR/report.html from DIR/results.jsonl and the run's ledger; returns its path."""
    store = RunDir(out)
    config = load_config(out)
    records = sorted(store.done().values(), key=lambda r: r.finished)
    balances, children, verify, verify_ok = _ledger_view(config, ledger, ledger_url)

    task_usd: dict[str, float] = {}
    by_agent: dict[str, float] = defaultdict(float)
    agent_amounts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    by_model: dict[str, float] = defaultdict(float)
    split: dict[str, dict[str, Amounts]] = {}
    for r in records:
        parts = split_spend(r.account, balances, children) if balances is not None else {}
        if parts:
            split[r.id] = parts
            task_usd[r.id] = parts["total"].usd
            for agent, amounts in parts.items():
                if agent != "total":
                    by_agent[agent] += amounts.usd
                    for k, v in amounts.model_dump().items():
                        agent_amounts[agent][k] += v
        else:
            task_usd[r.id] = r.usd
            for agent, amounts in r.spend.items():
                if agent != "total":
                    by_agent[agent] += amounts.get("usd", 0.0)
                    for k, v in amounts.items():
                        agent_amounts[agent][k] += v
        by_model[r.model] += task_usd[r.id]

    run_bal = balances.get(config.run_account) if balances else None
    scoring_bal = balances.get(config.scoring_account) if balances else None
    spent = run_bal.committed.usd if run_bal else sum(task_usd.values())
    held = run_bal.reserved.usd if run_bal else 0.0
    scoring_usd = scoring_bal.committed.usd if scoring_bal else sum(r.scoring.get("usd", 0.0) for r in records)
    scoring_cpu = scoring_bal.committed.cpu_seconds if scoring_bal else sum(
        r.scoring.get("cpu_seconds", 0.0) for r in records)
    total = _task_count(store, len(records))
    solved = sum(1 for r in records if r.solved)
    scored = sum(1 for r in records if r.solved is not None)
    plots = _plots(records, dict(by_agent), dict(by_model), task_usd, total)

    e = html.escape
    cards = [
        ("solved", f"{solved} / {scored}" if scored else "-", "hidden tests, of the tasks scored"),
        ("done", f"{len(records)} / {total}", "tasks with a result"),
        ("spent", _money(spent), f"of the {_money(config.budget_usd)} cap" + (f" (+{_money(held)} held)" if held else "")),
        ("left", _money(max(0.0, config.budget_usd - spent - held)), "of the run's budget"),
        ("scoring", _money(scoring_usd) if scoring_usd else f"{scoring_cpu:.2f} CPU-s", "hidden tests, outside the budget"),
        ("cost / solved", _money(spent / solved) if solved else "-", "run spend per solved task"),
    ]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>budgetflow run {e(config.name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>budgetflow run <code>{e(config.name)}</code></h1>",
        f"<div class='sub'>source <code>{e(config.source)}</code>{' (limit ' + str(config.limit) + ')' if config.limit else ''}"
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
    if len(records) < total:
        parts.append(f"<div class='note'>{total - len(records)} task(s) have no result yet: finish the run with "
                     f"<code>budgetflow run --resume --out {e(config.out)}</code></div>")
    parts.append("<h2>Plots</h2>")
    if plots:
        parts.append("<div class='plots'>" + "".join(
            f"<figure><img alt='{e(t)}' src='data:image/png;base64,{b}'><figcaption><b>{e(t)}</b>: {e(c)}"
            f"</figcaption></figure>" for t, c, b in plots) + "</div>")
    else:
        parts.append("<p class='muted'>matplotlib is not installed: no plots (pip install matplotlib).</p>")
    parts.append("<h2>Spend</h2><table><tr><th>by agent / kind</th><th>USD</th><th>input tokens</th>"
                 "<th>output tokens</th><th>CPU-s</th><th>GPU-s</th><th>calls</th></tr>" + "".join(
        f"<tr><td>{e(k)}</td><td class='num'>{_money(v)}</td>" + "".join(
            f"<td class='num'>{agent_amounts[k].get(d, 0):,.{0 if d in ('input_tokens', 'output_tokens', 'calls') else 2}f}"
            f"</td>" for d in ("input_tokens", "output_tokens", "cpu_seconds", "gpu_seconds", "calls")) + "</tr>"
        for k, v in sorted(by_agent.items(), key=lambda kv: (-kv[1], kv[0]))) + "</table><br>")
    parts.append("<table><tr><th>by model</th><th>USD</th></tr>" + "".join(
        f"<tr><td><code>{e(k)}</code></td><td class='num'>{_money(v)}</td></tr>" for k, v in by_model.items())
        + f"<tr><td>hidden-test scoring (<code>{e(config.scoring_account)}</code>, outside the budget)</td>"
        f"<td class='num'>{_money(scoring_usd)} ({scoring_cpu:.2f} CPU-s)</td></tr></table>")
    parts.append("<h2>Tasks</h2><table><tr><th>#</th><th>task</th><th>kind</th><th>solved (hidden)</th>"
                 "<th>visible</th><th>stopped</th><th>samples</th><th>spend</th><th>split</th><th>scoring</th>"
                 "<th>wall s</th><th>worker</th><th>files</th></tr>")
    for i, r in enumerate(sorted(records, key=lambda r: r.finished), start=1):
        verdict = ("<span class='ok'>yes</span>" if r.solved else "<span class='bad'>no</span>"
                   if r.solved is False else "<span class='muted'>-</span>")
        visible = "-" if r.solved_visible is None else ("yes" if r.solved_visible else "no")
        agents = split.get(r.id) or {k: Amounts(**v) for k, v in r.spend.items()}
        detail = ", ".join(f"{k} {_money(v.usd)}" for k, v in agents.items() if k != "total")
        stopped = e(r.reason) + (f" <span class='bad'>{e(r.error[:120])}</span>" if r.error else "") + (
            " <span class='muted'>(resumed)</span>" if r.resumed else "")
        sc = r.scoring.get("usd") or 0.0
        sc_text = _money(sc) if sc else f"{r.scoring.get('cpu_seconds', 0.0):.2f} CPU-s"
        links = " ".join(f"<a href='{e(p)}'>{n}</a>" for n, p in (("candidates", r.candidates_file),
                                                                   ("log", r.log_file)) if p)
        parts.append(
            f"<tr><td class='num'>{i}</td><td><code>{e(r.id)}</code></td><td>{e(r.kind)}</td><td>{verdict}</td>"
            f"<td>{visible}</td><td>{stopped}</td><td class='num'>{r.samples}</td>"
            f"<td class='num'>{_money(task_usd.get(r.id, r.usd))}</td><td>{e(detail)}</td>"
            f"<td class='num'>{e(sc_text)}</td><td class='num'>{r.wall_s:.1f}</td><td>{e(r.worker)}</td>"
            f"<td>{links}</td></tr>")
    parts.append("</table>")
    parts.append(f"<p class='sub'>Built {dt.datetime.now().strftime('%Y-%m-%d %H:%M:%S')} by "
                 f"<code>budgetflow report</code> from results.jsonl and the ledger.</p></body></html>")
    atomic_write(store.report, "\n".join(parts) + "\n")
    return store.report


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
