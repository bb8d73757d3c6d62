"""Checkpoints on SQLite (LangGraph's SqliteSaver): the graph state after every finished node, per thread_id."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver


@contextmanager
def sqlite_checkpointer(path: str | Path) -> Iterator[SqliteSaver]:
    """A SqliteSaver on the file `path` (created with its parent directory), closed on exit."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False)  # the saver serialises access with its own lock
    try:
        saver = SqliteSaver(conn)
        saver.setup()
        yield saver
    finally:
        conn.close()


def thread_config(thread_id: str) -> dict:
    return {"configurable": {"thread_id": thread_id}}
