"""The gateway's spend page: every key, its account's cap, spend and what is left, and its spend per hour (read from
the ledger's own entries, so the page shows what the audit shows)."""

from __future__ import annotations

import datetime as dt
import html
from collections import defaultdict

from ..budget import Ledger, format_usd, list_keys

_CSS = ("body{font-family:system-ui,sans-serif;margin:24px;color:#1d232a}table{border-collapse:collapse}"
        "td,th{padding:4px 10px;border-bottom:1px solid #e3e6ea;text-align:right}td:first-child,th:first-child,"
        "td:nth-child(2),th:nth-child(2){text-align:left}.bar{display:inline-block;background:#3b7dd8;height:10px}"
        ".sub{color:#667}")


def _hourly(ledger: Ledger, account: str) -> dict[str, float]:
    """USD committed per UTC hour on `account` (its own entries: a key's calls are made on its account)."""
    per_hour: dict[str, float] = defaultdict(float)
    for e in ledger.entries(account):
        if e.kind in ("commit", "release", "recover") and e.amounts.get("usd"):
            hour = dt.datetime.fromisoformat(e.time).strftime("%Y-%m-%d %H:00")
            per_hour[hour] += float(e.amounts["usd"])
    return dict(sorted(per_hour.items()))


def spend_page(ledger: Ledger) -> str:
    keys = list_keys(ledger)
    balances = {b.name: b for b in ledger.accounts()}
    rows, timelines = [], []
    for key in keys:
        bal = balances.get(key.account)
        spent = bal.committed.usd if bal else 0.0
        cap = bal.budget.usd if bal else None
        state = "active" if key.active else ("revoked" if key.revoked else "expired")
        rows.append(f"<tr><td><code>{html.escape(key.id)}</code></td><td>{html.escape(key.account)}</td>"
                    f"<td>{html.escape(key.label)}</td><td>{state}</td><td>{format_usd(spent)}</td>"
                    f"<td>{'—' if cap is None else format_usd(cap)}</td>"
                    f"<td>{'—' if cap is None else format_usd(max(cap - spent, 0.0))}</td></tr>")
    for account in dict.fromkeys(k.account for k in keys):
        hours = _hourly(ledger, account)
        if not hours:
            continue
        top = max(hours.values()) or 1.0
        bars = "".join(f"<tr><td>{h}</td><td><span class='bar' style='width:{max(2, int(300 * v / top))}px'></span>"
                       f" {format_usd(v)}</td></tr>" for h, v in hours.items())
        timelines.append(f"<h3>{html.escape(account)}</h3><table>{bars}</table>")
    total = sum(balances[a].committed.usd for a in dict.fromkeys(k.account for k in keys) if a in balances)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>budgetflow gateway</title><style>{_CSS}</style>"
            f"</head><body><h1>budgetflow gateway</h1><p class='sub'>ledger {html.escape(ledger.url)} · "
            f"{len(keys)} keys · {format_usd(total)} spent through keys · "
            f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC</p>"
            f"<table><tr><th>key</th><th>account</th><th>label</th><th>state</th><th>spent</th><th>cap</th>"
            f"<th>left</th></tr>{''.join(rows)}</table><h2>Spend per hour</h2>{''.join(timelines) or '<p>none yet</p>'}"
            f"</body></html>")
