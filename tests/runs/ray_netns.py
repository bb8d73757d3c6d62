"""Run by test_ray.py as PID 1 of fresh network + PID namespaces (`unshare --net --pid --fork --mount-proc`): bring up
`lo`, bridge the host's servers in (bridge.py), start a Ray head and one worker node on 127.0.0.1, run the
`budgetflow run ... --executor ray` command line against them, then `ray stop` (which, in this PID namespace, can only
see our own Ray processes; whatever is left dies with the namespace when we exit).

    python -m tests.runs.ray_netns BRIDGE_DIR PORT[,PORT...] -- BUDGETFLOW-RUN-ARGS...

Exit status: the command line's; 90+ when the cluster would not start.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.runs.bridge import tcp_to_unix

RAY = str(Path(sys.executable).parent / "ray")
QUIET = {"RAY_USAGE_STATS_ENABLED": "0", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1",
         "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "COLUMNS": "200"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sh(args: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
    t0 = time.monotonic()
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    print(f"$ {' '.join(args[:3])} ... -> {proc.returncode} in {time.monotonic() - t0:.1f}s", flush=True)
    return proc


def main() -> int:
    bridge_dir, ports = sys.argv[1], [int(p) for p in sys.argv[2].split(",")]
    args = sys.argv[sys.argv.index("--") + 1:]
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    bridges = [tcp_to_unix(p, os.path.join(bridge_dir, f"{p}.sock")) for p in ports]
    env = {**os.environ, **QUIET}
    temp = tempfile.mkdtemp(prefix="bfray", dir="/tmp")  # short: Ray's Unix socket paths must fit 107 bytes
    gcs = free_port()
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--object-store-memory=100000000",
              "--disable-usage-stats"]
    try:
        head = sh([RAY, "start", "--head", f"--port={gcs}", "--dashboard-host=127.0.0.1", "--include-dashboard=false",
                   f"--ray-client-server-port={free_port()}", f"--temp-dir={temp}", *common], env, 180)
        if head.returncode:
            print(head.stdout[-3000:], head.stderr[-3000:])
            return 90
        worker = sh([RAY, "start", f"--address=127.0.0.1:{gcs}", *common], env, 180)
        if worker.returncode:
            print(worker.stdout[-3000:], worker.stderr[-3000:])
            return 91
        run = sh([sys.executable, "-m", "budgetflow", "run", *args, "--executor", "ray",
                  "--address", f"127.0.0.1:{gcs}"], env, 400)
        print("--- budgetflow stdout\n" + run.stdout + "\n--- budgetflow stderr\n" + run.stderr[-6000:], flush=True)
        return run.returncode
    finally:
        sh([RAY, "stop", "--grace-period", "3"], env, 120)
        for b in bridges:
            b.close()
        shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
