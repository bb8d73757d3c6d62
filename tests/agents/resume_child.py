"""Run by test_kill_and_resume in a subprocess: run the codegen graph with a SQLite checkpointer and, once the
solver node has finished (its checkpoint is written: durability "sync"), write a marker and wait to be SIGKILLed.

    python resume_child.py LEDGER CHECKPOINT THREAD_ID BASE_URL MARKER
"""

from __future__ import annotations

import json
import os
import sys
import time

from budgetflow import Ledger, PriceBook
from budgetflow.agents import (
    build_codegen_graph,
    initial_state,
    sqlite_checkpointer,
    thread_config,
)
from budgetflow.llm import VLLMEngine
from budgetflow.sandbox import get_sandbox
from tests.agents.conftest import EASY, RESUME_BUDGET, RESUME_CONFIG
from tests.conftest import PRICE_PER_CPU_SECOND


def main() -> None:
    ledger_path, checkpoint, thread_id, base_url, marker = sys.argv[1:6]
    prices = PriceBook()
    prices.set("local/smollm2-135m", cpu_second=PRICE_PER_CPU_SECOND)
    llm = VLLMEngine("local/smollm2-135m", base_url, "smollm2-135m", prices=prices, device="cpu")
    ledger = Ledger(ledger_path)
    account = ledger.root(thread_id, RESUME_BUDGET).child(f"{thread_id}/{EASY.id}")
    with sqlite_checkpointer(checkpoint) as saver:
        graph = build_codegen_graph(llm, ledger=ledger, sandbox=get_sandbox("process"), strategy="best_of_n",
                                    config=RESUME_CONFIG, checkpointer=saver)
        for update in graph.stream(initial_state(EASY, account), thread_config(thread_id), stream_mode="updates",
                                   durability="sync"):
            if "solver" in update:
                solver = ledger.account(f"{account.name}/solver")
                with open(marker + ".tmp", "w") as f:
                    json.dump({"solver_calls": solver.spent().calls,
                               "candidates": len(update["solver"]["candidates"])}, f)
                os.replace(marker + ".tmp", marker)
                time.sleep(600)  # the test kills us here, between the solver and the verifier
    raise SystemExit("the graph finished before it was killed")


if __name__ == "__main__":
    main()
