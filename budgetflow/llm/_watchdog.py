"""Stopping a local engine call at its hold, whether or not the engine is sending anything.

A call's engine-time share grows only while it is in flight, and never faster than the wall clock (clock.py: a
request of weight w is charged w/W ≤ 1 second per second). So a call with `room` seconds of its hold left cannot
reach the hold sooner than `room` wall seconds from now: one thread that wakes at the earliest such moment over all
calls never misses a crossing, even during a long prefill when no chunk arrives. At each wake it asks the ledger for
more time (the hold grows under the same cap checks) or cuts the call: its meter stops and its connection is shut,
which makes vLLM abort the request. The cut lands `margin` seconds before the hold, which absorbs the few
milliseconds the thread needs to act; should a stalled machine still push a call past its hold, the ledger records
the excess as an overrun, which `verify()` reports.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from ._clock import EngineClock

Extend = Callable[[float], float]  # asked for seconds → seconds granted (0: the budget has no more)


@dataclass
class Watched:
    key: object
    held: float  # engine-seconds the ledger holds for the call
    margin: float
    extend: Extend
    cut: Callable[[], None]
    wake_at: float = 0.0
    was_cut: bool = False
    extensions: list[float] = field(default_factory=list)


class HoldWatchdog:
    def __init__(self, clock: EngineClock, now=time.monotonic, min_interval: float = 0.005):
        self._clock = clock
        self._now = now
        self._min_interval = min_interval
        self._cond = threading.Condition()
        self._watched: dict[object, Watched] = {}
        self._thread: threading.Thread | None = None

    def watch(self, key: object, held: float, *, margin: float, extend: Extend,
              cut: Callable[[], None]) -> Watched:
        """Watch the in-flight request `key` (already started on the clock) until `unwatch(key)`."""
        w = Watched(key, held, margin, extend, cut)
        with self._cond:
            self._schedule(w, share=0.0)
            self._watched[key] = w
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="budgetflow-hold-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()
        return w

    def unwatch(self, key: object) -> None:
        with self._cond:
            self._watched.pop(key, None)

    def _schedule(self, w: Watched, share: float) -> None:
        w.wake_at = self._now() + max(self._min_interval, w.held - w.margin - share)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._watched:
                    self._cond.wait()
                soonest = min(w.wake_at for w in self._watched.values())
                delay = soonest - self._now()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                due = [w for w in self._watched.values() if w.wake_at <= self._now()]
            for w in due:  # callbacks run outside the lock: an extension is a ledger write
                try:
                    self._check(w)
                except Exception:  # never let one call's failure stop the watch over the others: cut it
                    self.unwatch(w.key)
                    w.was_cut = True
                    try:
                        w.cut()
                    except Exception:
                        pass

    def _check(self, w: Watched) -> None:
        try:
            share = self._clock.share(w.key)
        except KeyError:  # finished meanwhile
            self.unwatch(w.key)
            return
        if share + w.margin >= w.held:
            asked = max(w.held, 0.5)  # slower than estimated: ask for as much again
            granted = 0.0
            for amount in (asked, asked / 4):
                try:
                    granted = w.extend(amount)
                except Exception:  # e.g. the call settled meanwhile (ReservationClosed): nothing to extend
                    granted = 0.0
                if granted:
                    break
            if granted:
                w.held += granted
                w.extensions.append(granted)
            else:
                with self._cond:
                    if w.key not in self._watched:
                        return  # finished while we asked: nothing to cut
                    self._watched.pop(w.key, None)
                w.was_cut = True
                w.cut()
                return
        with self._cond:
            if w.key in self._watched:
                self._schedule(w, share)
