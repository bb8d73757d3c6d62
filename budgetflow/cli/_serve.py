"""`budgetflow serve` (the OpenAI-compatible gateway) and `budgetflow keys create | list | revoke` (its callers)."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Annotated, Optional

import typer
from rich.table import Table

from ._common import DEFAULT_DB, Typer, err, fail, note, number, one_line, out, safe_url, show

DbOption = Annotated[  # the ledger the keys live in and the gateway spends on: --db as elsewhere, or --ledger
    str,
    typer.Option("--db", "--ledger", envvar="BUDGETFLOW_DB", show_envvar=True,
                 help="The ledger: a SQLAlchemy URL (sqlite:///gateway.db, postgresql://USER@HOST/DB) or a SQLite "
                      "file path."),
]

keys_app = Typer(
    help=(
        "API keys for `budgetflow serve`: each key spends on one ledger account, whose cap (and every cap above it) "
        "binds everything the key spends. The ledger keeps only a hash of each key.\n\n"
        "Example: budgetflow keys create --db gateway.db --account team-a/agent-1 --budget-usd 5"
    ),
)


def register(root: typer.Typer) -> None:
    root.command("serve")(serve)
    root.add_typer(keys_app, name="keys")


def serve(
    db: DbOption = DEFAULT_DB,
    model: Annotated[list[str], typer.Option("--model", "-m", help=(
        "A model to serve (repeatable): local/NAME (started on its first request), vllm/SERVED@URL, or a LiteLLM "
        "name such as openai/gpt-4o-mini. Clients name it in their request's `model`."))] = ...,  # type: ignore
    host: Annotated[str, typer.Option(help="Address to bind. Loopback by default: put a TLS reverse proxy in front "
                                           "to serve anything else.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.", callback=number(at_least=1))] = 8787,
    price_cpu_hour: Annotated[Optional[float], typer.Option(help="USD per CPU-hour of a local engine.")] = None,
    price_gpu_hour: Annotated[Optional[float], typer.Option(help="USD per GPU-hour of a local engine.")] = None,
    prices: Annotated[Optional[str], typer.Option(help="A prices TOML file ([models.\"NAME\"] tables).")] = None,
    max_body_kb: Annotated[int, typer.Option(help="Largest request body, KiB (larger: HTTP 413).",
                                             callback=number(at_least=1))] = 4096,
    concurrency: Annotated[int, typer.Option(help="Calls in flight per key; more wait in a queue of 4x this, "
                                                  "beyond which HTTP 429.", callback=number(at_least=1))] = 16,
    default_max_tokens: Annotated[int, typer.Option(help="max_tokens of a request that names none (its worst case "
                                                         "is reserved).", callback=number(at_least=1))] = 1024,
    refusal_status: Annotated[int, typer.Option(help="HTTP status of a budget refusal: 402 (not retried by the "
                                                     "openai client or LiteLLM), 429 or 403.")] = 402,
    page: Annotated[bool, typer.Option("--page", help="Serve the spend page at / (an admin token is printed).")]
    = False,
    drain: Annotated[float, typer.Option(help="On SIGTERM/Ctrl-C, seconds calls in flight get to finish before they "
                                              "are cut and charged what they used.")] = 30.0,
) -> None:
    """Serve an OpenAI-compatible API whose every call is reserved on the ledger account of the caller's key.

    Any client that takes a base URL and a key works unchanged: the official openai client, LiteLLM, LangChain's
    ChatOpenAI, mini-swe-agent. Each call reserves its worst case first (max_tokens is shrunk to what the key can
    afford, said in the x-budgetflow-shrunk header and usage.budgetflow); when nothing fits, HTTP 402 with
    {"error": {"type": "budget_exceeded", ...}} and nothing is sent to the model. Every response's usage carries the
    metered tokens, the call's cost and the key's spent / remaining dollars.

    Endpoints: /v1/chat/completions (stream or not, tools, response_format, n), /v1/completions, /v1/models,
    /health, and with --page a spend page at /.

    Example: budgetflow keys create --db gateway.db --account team-a --budget-usd 5

    Example: budgetflow serve --db gateway.db --model local/qwen2.5-coder-1.5b

    Example: OPENAI_BASE_URL=http://127.0.0.1:8787/v1 OPENAI_API_KEY=bfk_... python my_agent.py
    """
    from ..budget import Ledger, UnpricedModel
    from ..gateway import REFUSAL_STATUSES, GatewaySettings, ModelPool
    from ..gateway import serve as run_gateway

    if refusal_status not in REFUSAL_STATUSES:
        fail(f"--refusal-status must be one of {', '.join(map(str, REFUSAL_STATUSES))}, got {refusal_status}")
    if not 1 <= port <= 65535:
        fail(f"--port must be from 1 to 65535, got {port}")
    try:
        Ledger(db, create=False).close()  # keys live in the ledger: serving an empty new one would refuse everyone
    except Exception as exc:
        fail(f"cannot open ledger {safe_url(db)!r}: {one_line(exc)}; create keys first with `budgetflow keys create "
             f"--db {db} ...`")
    try:
        pool = ModelPool(list(model), cpu_hour=price_cpu_hour, gpu_hour=price_gpu_hour, prices_file=prices)
    except (UnpricedModel, ValueError, OSError) as exc:
        fail(one_line(exc))
    from ..llm import ModelCheckError, check_model, probe_model

    for name in pool.names:  # known, installed, priced, credentials present, endpoint answering: before listening
        try:
            pool.notes += check_model(name, prices=pool.prices)
            probe_model(name)
        except ModelCheckError as exc:
            fail(f"--model {name}: {one_line(exc)}")
    for line in pool.notes:
        note(line)
    token = secrets.token_urlsafe(18) if page else None
    settings = GatewaySettings(max_body_bytes=max_body_kb * 1024, per_key_concurrency=concurrency,
                               per_key_queue=4 * concurrency, default_max_tokens=default_max_tokens,
                               refusal_status=refusal_status, admin_token=token)

    def ready(url: str) -> None:
        err.print(f"budgetflow gateway on {url} · ledger {safe_url(db)} · models: {', '.join(pool.names)}")
        if token:
            err.print(f"spend page: {url.removesuffix('/v1')}/?token={token}")

    if host not in ("127.0.0.1", "localhost", "::1"):
        note(f"binding {host}: keys travel in clear text unless a TLS reverse proxy is in front")
    run_gateway(db, pool, settings, host=host, port=port, drain_s=drain, on_ready=ready)


@keys_app.command("create")
def keys_create(
    account: Annotated[str, typer.Option(help="The ledger account the key spends on, e.g. team-a or team-a/agent-1 "
                                              "(a path: each part is an account under the one before).")],
    db: DbOption = DEFAULT_DB,
    budget_usd: Annotated[Optional[float], typer.Option(help="Cap of the key's account, USD (needed when the account "
                                                             "is new; an existing account keeps its cap).")] = None,
    parent_budget_usd: Annotated[Optional[float], typer.Option(
        help="Cap of the parent account when it is created here (keys under one parent share its cap).")] = None,
    label: Annotated[str, typer.Option(help="A note shown in `keys list`.")] = "",
    expires: Annotated[Optional[str], typer.Option(help="Expiry: an ISO date/time (UTC unless it says) or a number "
                                                        "of days, e.g. 30.")] = None,
) -> None:
    """Create a key spending on ACCOUNT and print it, once: the ledger keeps only its hash.

    Creates the ledger and the account when they are new. An account path team-a/agent-1 puts agent-1 under team-a:
    every key under team-a shares team-a's cap as well as its own.

    Example: budgetflow keys create --db gateway.db --account team-a/agent-1 --budget-usd 5 --parent-budget-usd 20
    """
    from ..budget import Budget, Ledger, create_key

    when = _expiry(expires)
    parts = [p for p in account.split("/")]
    if not all(p.strip() for p in parts):
        fail(f"--account {account!r}: empty part in the path")
    for value, flag in ((budget_usd, "--budget-usd"), (parent_budget_usd, "--parent-budget-usd")):
        if value is not None and not value > 0:
            fail(f"{flag} must be more than 0, got {value}")
    try:
        ledger = Ledger(db)
    except Exception as exc:
        fail(f"cannot open ledger {safe_url(db)!r}: {one_line(exc)}")
    try:
        names = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        existing = {b.name for b in ledger.accounts()}
        if names[-1] not in existing and budget_usd is None:
            fail(f"account {names[-1]!r} is new: give it a cap with --budget-usd (a key never spends uncapped)")
        parent = None
        for i, name in enumerate(names):
            last, is_parent = i == len(names) - 1, i == len(names) - 2
            cap = budget_usd if last else (parent_budget_usd if is_parent else None)
            budget = Budget(usd=cap) if cap is not None and name not in existing else None
            if name in existing:
                acct = ledger.account(name, parent=parent)
                if cap is not None and (is_parent or last):
                    note(f"account {name!r} exists: it keeps its cap (the flag for it is ignored)")
            elif parent is None:
                acct = ledger.root(name, budget or Budget())
                if not last:
                    note(f"created {name!r} without a cap of its own (its children's caps bind)")
            else:
                acct = parent.child(name, budget)
            parent = acct
        key = create_key(ledger, parent, label=label, expires=when)
    except typer.Exit:
        raise
    except Exception as exc:
        fail(one_line(exc))
    finally:
        ledger.close()
    err.print(f"key for account {names[-1]!r} (shown once; the ledger keeps only its hash):")
    out.print(key, soft_wrap=True, highlight=False)


def _expiry(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        return dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=float(text))
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        fail(f"--expires {text!r}: give an ISO date (2026-12-31) or a number of days")
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


@keys_app.command("list")
def keys_list(db: DbOption = DEFAULT_DB) -> None:
    """Every key: its id, account, label, state, and what its account spent of its cap.

    Example: budgetflow keys list --db gateway.db
    """
    from ..budget import Ledger, list_keys

    try:
        ledger = Ledger(db, create=False)
    except Exception as exc:
        fail(f"cannot open ledger {safe_url(db)!r}: {one_line(exc)}")
    try:
        show(keys_table(ledger, list_keys(ledger), f"API keys in {safe_url(db)}"))
    finally:
        ledger.close()


def keys_table(ledger, keys, title: str) -> Table:
    from ..budget import format_usd

    balances = {b.name: b for b in ledger.accounts()}
    table = Table(title=title)
    for col in ("key", "account", "label", "state", "created", "expires", "spent", "cap"):
        table.add_column(col, justify="right" if col in ("spent", "cap") else "left", overflow="fold")
    for k in keys:
        bal = balances.get(k.account)
        state = "active" if k.active else ("revoked" if k.revoked else "expired")
        table.add_row(k.id, k.account, k.label, state, f"{k.created:%Y-%m-%d %H:%M}",
                      "-" if k.expires is None else f"{k.expires:%Y-%m-%d %H:%M}",
                      format_usd(bal.committed.usd) if bal else "-",
                      "-" if bal is None or bal.budget.usd is None else format_usd(bal.budget.usd))
    return table


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="The key's id (from `keys list`) or the whole key.")],
                db: DbOption = DEFAULT_DB) -> None:
    """Revoke a key: its next request gets HTTP 401. What it spent stays on its account.

    Example: budgetflow keys revoke 3f9a0c12ab45 --db gateway.db
    """
    from ..budget import KeyRefused, Ledger, revoke_key

    try:
        ledger = Ledger(db, create=False)
    except Exception as exc:
        fail(f"cannot open ledger {safe_url(db)!r}: {one_line(exc)}")
    try:
        revoked = revoke_key(ledger, key)
    except KeyRefused as exc:
        fail(one_line(exc))
    finally:
        ledger.close()
    out.print(f"revoked key {revoked.id} (account {revoked.account})")
