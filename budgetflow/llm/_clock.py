"""Engine time, apportioned to the requests that shared it.

A local engine batches every request in flight: each decode step produces one token for every live sequence. So
the busy time of the engine is split between requests in proportion to their live sequences (processor sharing).
We keep one "virtual clock" V(t) = ∫ dt / W(t), where W is the total weight (live sequences) in flight; a request of
weight w that was in flight from t0 to t1 (at constant weight) is charged w·(V(t1) − V(t0)). Idle time (W = 0) is
charged to nobody. The sum of all charges equals the engine's busy time.

The clock only sees this process's requests: an engine shared with other processes makes each of them charge
itself for the whole busy time — an overcharge, never an undercharge.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass
class _Flight:
    weight: float
    v_mark: float  # V when the weight last changed
    charged: float = 0.0  # seconds accrued before v_mark
    frozen: bool = False  # cut: its meter stopped for good


class EngineClock:
    def __init__(self, now=time.monotonic):
        self._now = now
        self._lock = threading.Lock()
        self._flights: dict[object, _Flight] = {}
        self._total_weight = 0.0
        self._v = 0.0
        self._t = now()
        self.busy_seconds = 0.0

    def _advance(self) -> None:
        t = self._now()
        if self._total_weight > 0:
            self._v += (t - self._t) / self._total_weight
            self.busy_seconds += t - self._t
        self._t = t

    def start(self, key: object, weight: float) -> None:
        with self._lock:
            self._advance()
            self._flights[key] = _Flight(weight, self._v)
            self._total_weight += weight

    def set_weight(self, key: object, weight: float) -> None:
        """A sequence of the request finished: it no longer shares the engine."""
        with self._lock:
            self._advance()
            f = self._flights[key]
            if f.frozen:
                return
            f.charged += f.weight * (self._v - f.v_mark)
            self._total_weight += weight - f.weight
            f.weight, f.v_mark = weight, self._v

    def freeze(self, key: object) -> None:
        """The request was cut: stop its meter now, whatever its stream still delivers."""
        with self._lock:
            self._advance()
            f = self._flights[key]
            if not f.frozen:
                f.charged += f.weight * (self._v - f.v_mark)
                self._total_weight -= f.weight
                f.weight, f.v_mark, f.frozen = 0.0, self._v, True

    def share(self, key: object) -> float:
        """Seconds charged to the request so far."""
        with self._lock:
            self._advance()
            f = self._flights[key]
            return f.charged + f.weight * (self._v - f.v_mark)

    def finish(self, key: object) -> float:
        """Stop the request's meter and return its total seconds."""
        with self._lock:
            self._advance()
            f = self._flights.pop(key)
            self._total_weight -= f.weight
            if not self._flights:
                self._total_weight = 0.0  # no float drift across idle periods
            return f.charged + f.weight * (self._v - f.v_mark)
