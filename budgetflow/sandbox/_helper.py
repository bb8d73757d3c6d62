"""Root-side sandbox helper, run as a fresh interpreter: ``python -I _helper.py MODE FD PYSECCOMP``.

MODE ``zygote``: builds the read-only sandbox root once (and pivots into it), then for
every connection the client sends over the control socket FD it forks a *worker*.
MODE ``once``: the cold path; the same, for a single connection and a single run.

  worker    pid 1 of its own pid namespace (forked right after unshare(CLONE_NEWPID)),
            own mount/uts namespaces, a network namespace (loopback only) unless the
            client asked for the host network, its own /proc, its cgroups (memory, pids,
            cpuacct, freezer, cpu) and one unprivileged uid. Serves runs one after
            another: mounts a fresh size-capped tmpfs on /tmp and /dev/shm, watches the
            wall clock, the run's CPU and the output, then kills every task of the run
            through its cgroup, waits until all are gone and unmounts. Quits on any doubt
            (see _worker.py).
  template  the worker's first child. It never touches run data, so what it forks
            inherits nothing of earlier runs (the worker itself reads their output).
  program   forked by the template per run: joins the cgroups, new IPC namespace, reads
            its files straight from the client, drops to the uid, rlimits,
            no_new_privs, seccomp; then runs the script in-process (warm) or exec's.

A worker exiting takes its pid namespace, and so every process of its runs, with it;
the zygote then removes its cgroups, and drops its network namespace unless it ended
cleanly. Stdlib + pyseccomp only.
"""
from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # siblings, imported as top-level modules
import _linux as L  # noqa: E402
import _protocol as P  # noqa: E402
from _root import Config, setup  # noqa: E402
from _worker import EXIT_RETIRED, Slot, worker  # noqa: E402


class Zygote:
    """Forks workers (each pid 1 of a fresh pid namespace) and cleans up after them."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.seq = 0
        self.live: dict[int, Slot] = {}
        self.free_netns = list(cfg.netns_pool)
        self.free_index = list(range(255, -1, -1))  # uid offsets; one per live worker
        self.dead_groups: list = []  # cgroups whose last task is still exiting

    def spawn(self, conn_fd: int, network: bool, close_in_child: list[socket.socket]) -> int:
        if not self.free_index:
            raise RuntimeError("256 sandbox workers are already running")
        self.seq += 1
        netns = None if network or not self.free_netns else self.free_netns.pop()
        slot = Slot(self.cfg, self.seq, self.free_index.pop(), netns, network)
        L.unshare(L.CLONE_NEWPID)  # only the next child enters it
        try:
            pid = os.fork()
        except BaseException:
            L.setns(self.cfg.own_pidns, L.CLONE_NEWPID)
            raise
        if pid == 0:
            code = EXIT_RETIRED
            try:
                for s in close_in_child:
                    s.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                code = worker(socket.socket(fileno=conn_fd), self.cfg, slot)
            finally:
                os._exit(code)
        L.setns(self.cfg.own_pidns, L.CLONE_NEWPID)  # back, so the next unshare is allowed
        self.live[pid] = slot
        return pid

    def reap(self, block: bool = False) -> None:
        while self.live:
            try:
                pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            slot = self.live.pop(pid, None)
            if slot:
                self.free_index.append(slot.index)
            if slot and slot.netns is not None:
                if status == 0:  # the worker checked after every run that no socket was left in it
                    self.free_netns.append(slot.netns)
                else:  # it quit in doubt (or was killed): the namespace may hold a run's sockets
                    os.close(slot.netns)
            if slot:
                self.dead_groups.append(slot.group)
        self.dead_groups = [g for g in self.dead_groups if not g.remove()]
        if block:
            for _ in range(100):
                if not self.dead_groups:
                    break
                time.sleep(0.01)
                self.dead_groups = [g for g in self.dead_groups if not g.remove()]

    def kill_all(self) -> None:
        for pid in list(self.live):
            try:
                os.kill(pid, signal.SIGKILL)  # a worker is pid 1: its namespace goes with it
            except ProcessLookupError:
                pass


# Imported once in the zygote so runs do not pay for them (HumanEval-style code uses
# typing in one task of eight); they are stdlib, hold no secrets, and each run gets its
# own copy-on-write view.
PRELOAD = ("typing", "math", "re", "collections", "itertools", "functools", "heapq", "bisect", "string",
           "random", "copy", "hashlib", "operator", "fractions", "decimal", "datetime", "json", "dataclasses",
           "statistics", "unittest")


def serve_zygote(ctrl: socket.socket, cfg: Config) -> None:
    L.prctl(L.PR_SET_CHILD_SUBREAPER, 1)
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    # Everything alive now moves to a generation the collector never scans, so forked
    # children do not copy-on-write the whole heap the first time gc runs.
    gc.collect()
    gc.freeze()
    z = Zygote(cfg)
    info = {"cgroups": cfg.cgroups.version, "python": cfg.python}
    ctrl.sendall(b"ready " + json.dumps(info).encode())
    while True:
        msg, fd = L.recv_fd(ctrl)
        z.reap()
        if not msg:  # client gone: nobody wants the results; end the runs now
            z.kill_all()
            z.reap(block=True)
            return
        if fd is None:
            continue
        try:
            z.spawn(fd, msg == b"W1", [ctrl])
        except Exception as e:  # the client sees its connection close and reports it
            sys.stderr.write(f"budgetflow sandbox zygote: cannot start a worker: {e}\n")
        finally:
            os.close(fd)


def serve_once(conn: socket.socket, cfg: Config, network: bool) -> None:
    z = Zygote(cfg)
    z.spawn(conn.fileno(), network, [])
    conn.close()
    z.reap(block=True)


def main() -> None:
    mode, fd, pyseccomp_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    extra = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}  # an environment: its interpreter and mounts
    L.prctl(L.PR_SET_DUMPABLE, 0)  # nobody may ptrace or read the helper's memory
    sock = socket.socket(fileno=fd)
    try:
        # the warm pool recycles network namespaces; a cold run makes its own
        cfg = setup(pyseccomp_path, pool_netns=2 * (os.cpu_count() or 1) + 2 if mode == "zygote" else 0,
                    python=extra.get("python"), mounts=[tuple(m) for m in extra.get("mounts", [])])
    except Exception as e:
        msg = f"error {type(e).__name__}: {e}"
        if mode == "zygote":
            sock.sendall(msg.encode())
        else:
            P.recv_msg_fd(sock)
            P.send_msg(sock, {"error": msg[6:]})
        return
    if mode == "zygote":
        serve_zygote(sock, cfg)
    else:
        L.prctl(L.PR_SET_PDEATHSIG, signal.SIGKILL)
        serve_once(sock, cfg, network=mode == "once-net")


if __name__ == "__main__":
    main()
