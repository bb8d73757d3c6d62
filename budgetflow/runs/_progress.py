"""The live display of a run: tasks done, solved, spent, remaining, rate and ETA — a rich bar on a terminal, and one
plain line per finished task otherwise (CI logs, `make demo > log`), so a long run is never silent."""

from __future__ import annotations

import time

from rich.console import Console

from ..budget import format_usd
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


class RunProgress:
    def __init__(self, console: Console, *, total: int, done: int, solved: int, cap_usd: float,
                 enabled: bool | None = None):
        self.console = console
        self.enabled = console.is_terminal if enabled is None else enabled
        self.total, self.done, self.solved, self.cap = total, done, solved, cap_usd
        self._start_done = done
        self._t0 = time.monotonic()
        self._progress: Progress | None = None
        self._task = None

    def __enter__(self) -> "RunProgress":
        if self.enabled:
            self._progress = Progress(
                SpinnerColumn(), TextColumn("[bold]tasks"), BarColumn(), MofNCompleteColumn(),
                TextColumn("solved [green]{task.fields[solved]}[/green]"),
                TextColumn("spent ${task.fields[spent]:.4f} · left ${task.fields[left]:.4f}"),
                TextColumn("{task.fields[rate]}"), TextColumn("ETA {task.fields[eta]}"), TimeElapsedColumn(),
                console=self.console, transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("run", total=self.total, completed=self.done, solved=self.solved,
                                                 spent=0.0, left=self.cap, rate="-", eta="-")
        return self

    def update(self, *, done: int, solved: int, spent: float, left: float, finished=()) -> None:
        """After tasks finished (`finished`: their TaskRecords): move the bar, or print a line each."""
        self.done, self.solved = done, solved
        elapsed = time.monotonic() - self._t0
        finished_here = done - self._start_done
        rate = finished_here / elapsed if elapsed > 0 and finished_here > 0 else 0.0
        eta = "-"
        if rate > 0:
            secs = int((self.total - done) / rate)
            eta = f"{secs // 3600}:{secs % 3600 // 60:02d}:{secs % 60:02d}"
        rate_text = f"{rate * 60:.1f} tasks/min" if rate else "-"
        if self._progress is None:
            for record in finished:
                verdict = {True: "solved", False: "not solved", None: "not scored"}[record.solved]
                self.console.print(
                    f"[{done}/{self.total}] {record.id}: {verdict} ({record.reason}, {record.samples} sample(s)), "
                    f"{format_usd(record.usd)} · spent {format_usd(spent)} · left {format_usd(left)} · "
                    f"{rate_text} · ETA {eta}", markup=False, highlight=False, soft_wrap=True)
            return
        self._progress.update(self._task, completed=done, solved=solved, spent=spent, left=left,
                              rate=rate_text, eta=eta)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
