"""Tools for LangChain / LangGraph agents whose runs are paid for on the ledger too: a Python tool that runs the
model's code in budgetflow's sandbox (its worst-case CPU reserved before it starts, the measured CPU committed), and
a read-only file search over one directory (no cost to meter)."""

from __future__ import annotations

import re
from pathlib import Path
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, tool

from ..budget import Account, BudgetExceeded, Ledger
from ..sandbox import Limits, Sandbox, get_sandbox
from ..verifiers import metered_run
from . import _lc_convert as convert

_OUTPUT_CHARS = 2000


def python_tool(*, sandbox: Sandbox | None = None, limits: Limits | None = None, usd_per_cpu_second: float = 0.0,
                account: Account | None = None, ledger: Ledger | None = None, name: str = "python") -> BaseTool:
    """A `python` tool: runs a program in the sandbox and returns what it printed. Each run reserves the sandbox's
    provable CPU bound under `limits` (and its price, `usd_per_cpu_second`) on the run's account
    (`config["configurable"]["budgetflow_account"]`, else `account=`); a run the budget cannot afford is not started
    and the tool says so (the agent sees it as the tool's answer)."""
    box = sandbox or get_sandbox("process")
    bounds = limits or Limits(timeout_s=10, cpu_s=5)

    @tool(name)
    def run_python(code: str, config: RunnableConfig) -> str:
        """Run a Python program and return what it printed (stdout, then stderr). Use print() to show results."""
        acc = convert.account_from(config, account, ledger)
        if acc is None:
            raise ValueError(f"{name}: no account to charge: pass account= or run with "
                             f"config={{'configurable': {{'{convert.ACCOUNT_KEY}': account}}}}")
        try:
            result, _ = metered_run(acc, box, bounds, usd_per_cpu_second, lambda: box.run_python(code, limits=bounds))
        except BudgetExceeded as err:
            return f"Not run: the budget cannot afford another sandbox run. {err}"
        out = (result.stdout + (("\n" + result.stderr) if result.stderr.strip() else "")).strip()
        status = "" if result.exit_code == 0 else f"[exit code {result.exit_code}]\n"
        return (status + out)[:_OUTPUT_CHARS] or "(no output)"

    return run_python


def file_search_tool(root: str | Path, *, name: str = "search_files", max_hits: int = 20) -> BaseTool:
    """A `search_files` tool: the lines of the text files under `root` that match a regular expression (read-only;
    paths outside `root` are never read)."""
    base = Path(root).resolve()

    @tool(name)
    def search_files(pattern: str) -> str:
        """Search the project's files for a regular expression; returns matching lines as path:line: text."""
        try:
            regex = re.compile(pattern)
        except re.error as err:
            return f"invalid regular expression: {err}"
        hits: list[str] = []
        for path in sorted(base.rglob("*")):
            if not path.is_file() or path.is_symlink() or path.stat().st_size > 1 << 20:
                continue
            try:
                lines = path.read_text(errors="strict").splitlines()
            except (UnicodeDecodeError, OSError):
                continue
            for no, line in enumerate(lines, 1):
                if regex.search(line):
                    hits.append(f"{path.relative_to(base)}:{no}: {line.strip()[:200]}")
                    if len(hits) >= max_hits:
                        return "\n".join(hits + [f"(first {max_hits} matches)"])
        return "\n".join(hits) or "no match"

    return search_files
