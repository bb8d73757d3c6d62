"""Where and when a benchmark ran: stamped into every result JSON (the machines are shared; a figure without its
machine, date and load is not comparable)."""

from __future__ import annotations

import datetime as dt
import os
import platform


def provenance() -> dict:
    cpu = ""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                   "")
    except OSError:
        pass
    return {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": {"node": platform.node(), "cpu": cpu, "cpus": os.cpu_count(), "kernel": platform.release(),
                        "python": platform.python_version()},
            "loadavg": os.getloadavg()[0]}
