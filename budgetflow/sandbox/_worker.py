"""Sandbox helper, per worker: pid 1 of a pid namespace, serving runs one after another. It
forks the template (``_program.py``), watches each run (output, wall clock, the CPU of the
run's cgroup), stops it by cgroup and makes sure nothing of it is left before the next run:
no task in its groups, the template's report for exactly this run, no socket in the network
namespace. On any doubt it answers, says so, and exits; its pid namespace takes whatever it
could not account for with it. Helper-side (stdlib only).
"""
from __future__ import annotations

import math
import os
import select
import signal
import socket
import struct
import time

import _linux as L
import _program
import _protocol as P
from _root import Config

UID_BASE = P.UID_BASE
EXIT_RETIRED = 3  # the worker's exit status when it quit in doubt: the zygote drops its network namespace
_STOP_WAIT_S = 3.0  # how long the tasks of a killed run may take to be gone before the worker gives up
_REALTIME_AFTER_S = 0.05  # a run this long gets a real-time watcher (short runs do not pay its cost)


class SetupFailed(RuntimeError):
    """A run could not be set up; the program never started."""


class Slot:
    """What the zygote gives one worker: uid, cgroups, network namespace."""

    def __init__(self, cfg: Config, seq: int, index: int, netns: int | None, network: bool) -> None:
        # uid unique among all live workers on the machine: zygote pid + a free index
        self.index = index
        self.uid = UID_BASE + (os.getpid() << 8) + index
        self.group = cfg.cgroups.create(f"bf-{cfg.cgroups.namespace}-{os.getpid()}-{seq}")
        self.netns, self.network = netns, network


def worker(conn: socket.socket, cfg: Config, slot: Slot) -> int:
    """Serve runs until the client hangs up (0) or a run leaves a doubt (EXIT_RETIRED)."""
    L.prctl(L.PR_SET_PDEATHSIG, signal.SIGKILL)
    flags = L.CLONE_NEWNS | L.CLONE_NEWUTS
    if not slot.network and slot.netns is None:
        flags |= L.CLONE_NEWNET
    L.unshare(flags)
    if not slot.network:
        if slot.netns is None:
            L.loopback_up()
        else:
            L.setns(slot.netns, L.CLONE_NEWNET)
    socket.sethostname("sandbox")
    L.mount("proc", "/proc", "proc", L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC, "hidepid=2")
    t_parent, t_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    template_pid = os.fork()
    if template_pid == 0:
        try:
            conn.close()
            t_parent.close()
            _program.template(t_child, cfg, slot)
        finally:
            os._exit(0)
    t_child.close()
    try:  # the watcher must not wait behind the run it watches (unprivileged, nice >= 0): see _realtime
        os.setpriority(os.PRIO_PROCESS, 0, -20)
    except OSError:
        pass
    w = Worker(cfg, slot, template_pid, t_parent)
    while True:
        try:
            hdr, payload_fd = P.recv_msg_fd(conn)
        except (EOFError, OSError):
            return 0
        try:
            facts = w.run(hdr, payload_fd)
        except Exception as e:
            facts = {"error": f"{type(e).__name__}: {e}", "before_start": isinstance(e, SetupFailed)}
            w.retire = w.retire or "error"
        if w.retire:
            facts["retire"] = w.retire
        try:
            P.send_msg(conn, facts)
        except OSError:
            return EXIT_RETIRED
        if w.retire:
            return EXIT_RETIRED  # the client drops this worker; a new one starts clean
        try:
            slot.group.recycle()  # while the client reads the answer
        except OSError:
            return EXIT_RETIRED


def _sockstat() -> tuple[int, int]:
    """(sockets, TIME_WAIT entries) of this network namespace."""
    used = tw = 0
    with open("/proc/net/sockstat") as f:
        for line in f:
            parts = line.split()
            if parts[:1] == ["sockets:"]:
                used = int(parts[2])
            elif parts[:1] == ["TCP:"]:
                tw = int(parts[parts.index("tw") + 1])
    return used, tw


class Worker:
    def __init__(self, cfg: Config, slot: Slot, template_pid: int, tsock: socket.socket) -> None:
        self.cfg, self.slot, self.template_pid, self.tsock = cfg, slot, template_pid, tsock
        self.run_id = 0
        self.retire: str | None = None  # why this worker must not serve another run
        # the template's socketpair is ours; any other socket left in the namespace is a run's
        self.sockets = None if slot.network else _sockstat()[0]

    def run(self, hdr: dict, payload_fd: int | None) -> dict:
        if payload_fd is None:
            raise RuntimeError("request without its payload descriptor")
        lim, uid, group = hdr["limits"], self.slot.uid, self.slot.group
        try:
            group.prepare(lim["memory_bytes"], lim["max_processes"], hdr.get("cpu_quota"))
        except (OSError, ValueError) as e:  # nothing has run yet: the client may retry on a fresh worker
            os.close(payload_fd)
            raise SetupFailed(f"could not set the run's cgroup limits: {e}") from e
        oom0 = group.oom_kills()
        inodes = max(1024, lim["disk_bytes"] // 4096)
        own = f"mode=0700,uid={uid},gid={uid}"
        L.mount("tmpfs", "/tmp", "tmpfs", L.MS_NOSUID | L.MS_NODEV,
                f"size={lim['disk_bytes']},nr_inodes={inodes},{own}")
        L.mount("tmpfs", "/dev/shm", "tmpfs", L.MS_NOSUID | L.MS_NODEV,
                f"size={min(lim['disk_bytes'], 16 << 20)},nr_inodes=256,{own}")
        try:
            facts = self._run(lim, hdr.get("cpu_poll_s", 0.01), payload_fd)
            vfs = os.statvfs("/tmp")
            facts["disk_full"] = vfs.f_bavail == 0 or vfs.f_favail == 0
        finally:
            L.umount2("/dev/shm", L.MNT_DETACH)
            L.umount2("/tmp", L.MNT_DETACH)
        facts.update(group.finish())
        facts["oom_killed"] = group.oom_kills() > oom0
        facts["peak_memory_bytes"] = group.peak_memory()
        if self.sockets is not None and not self.retire and not self._network_clean():
            self.retire = "a socket of the run outlived it"
        return facts

    def _run(self, lim: dict, poll_s: float, payload_fd: int) -> dict:
        self.run_id += 1
        group = self.slot.group
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        cpu0 = group.cpu_ns()
        start = time.monotonic()  # before the fork: the wall clock covers everything the run does
        try:
            self.tsock.sendmsg([_program.START.pack(b"R", self.run_id)],
                               [(socket.SOL_SOCKET, socket.SCM_RIGHTS, _pack_fds(payload_fd, out_w, err_w))])
        finally:
            for fd in (payload_fd, out_w, err_w):
                os.close(fd)
        facts = self._watch(lim, poll_s, out_r, err_r, start, cpu0)
        facts["duration_s"] = time.monotonic() - start
        facts["cpu_s"] = (group.cpu_ns() - cpu0) / 1e9  # every task is gone: nothing more can be charged
        return facts

    def _exited(self, deadline: float) -> int | None:
        """The program's wait status as the template reports it for this run, or None by the deadline."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.tsock], [], [], left)[0]:
                return None
            status = self._read_report()
            if status is not None:
                return status

    def _read_report(self) -> int | None:
        """The template's next report: the wait status if it says this run's program exited, else None."""
        msg = self.tsock.recv(64)
        if len(msg) != _program.REPORT.size:
            self.retire = "the template is gone"
            raise RuntimeError(self.retire)
        run_id, kind, _pid, status = _program.REPORT.unpack(msg)
        if run_id != self.run_id:  # never taken for this run's; and the worker goes
            self.retire = f"a stray template report (run {run_id}) during run {self.run_id}"
            return None
        return status if kind == _program.EXITED else None

    def _watch(self, lim: dict, poll_s: float, out_r: int, err_r: int, start: float, cpu0: int) -> dict:
        """Pump the output until the template reports the program's status, the wall clock or the
        CPU of the run's cgroup runs out, or the output overflows; then stop every task of the run."""
        group = self.slot.group
        poller = select.poll()
        bufs = {out_r: bytearray(), err_r: bytearray()}
        for fd in (out_r, err_r):
            os.set_blocking(fd, False)
            poller.register(fd, select.POLLIN)
        tfd = self.tsock.fileno()
        poller.register(tfd, select.POLLIN)
        cap, total = lim["output_bytes"], 0
        timed_out = capped = cpu_out = realtime = False
        status: int | None = None
        deadline = start + lim["timeout_s"]
        cpu_cap = int(lim["cpu_s"] * 1e9)
        open_fds = {out_r, err_r}
        while status is None:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            for fd, _ev in poller.poll(max(1, math.ceil(min(left, poll_s) * 1000))):
                if fd == tfd:
                    status = self._read_report()
                elif fd in open_fds:
                    total += _read_some(fd, bufs[fd], cap - total, poller, open_fds)
                    capped = capped or total > cap
            if capped:
                break
            if group.cpu_ns() - cpu0 >= cpu_cap:  # at most poll_s after the run reached its CPU limit
                cpu_out = status is None
                break
            self._reap_orphans()
            if not realtime and time.monotonic() - start > _REALTIME_AFTER_S:
                realtime = _realtime(True)
        status = self._stop(status)
        if realtime:
            _realtime(False)
        # What the program wrote before it exited is in the pipes; the writers are dead now.
        for fd in list(open_fds):
            while fd in open_fds and total <= cap:
                got = _read_some(fd, bufs[fd], cap - total, poller, open_fds)
                if got == 0:
                    break
                total += got
            capped = capped or total > cap
        for fd in (out_r, err_r):
            os.close(fd)
        out, err = bytes(bufs[out_r]), bytes(bufs[err_r])
        if capped:  # keep exactly the cap, stdout first
            out = out[:cap]
            err = err[: max(0, cap - len(out))]
        if timed_out or capped or cpu_out:
            status = None
        return {"timed_out": timed_out, "output_capped": capped, "cpu_killed": cpu_out, "stdout": out,
                "stderr": err, "status": status}

    def _reap_orphans(self) -> None:
        """Orphans of the run re-parent to us (pid 1); zombies would hold pids."""
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.template_pid:
                self.retire = "the template died"
                raise RuntimeError(self.retire)

    def _stop(self, status: int | None) -> int | None:
        """Kill every task of the run's cgroup (threads of zombie leaders included) until none is left
        and the template has reported the program's status (it reaps the program, we the orphans)."""
        group = self.slot.group
        deadline = time.monotonic() + _STOP_WAIT_S
        while True:
            self._reap_orphans()
            if status is not None and group.tasks() == 0:  # none left, so none can be forking either
                return status
            if time.monotonic() > deadline:
                self.retire = self.retire or "tasks of the run would not die, or the template did not report"
                return status
            group.kill()  # also when empty: a program not yet in its group is killed once it joins
            if status is None:
                status = self._exited(time.monotonic() + 0.001)
            else:
                time.sleep(0.0005)

    def _network_clean(self) -> bool:
        """No socket of the run left in the (reused) network namespace: a listener kept alive by an
        SCM_RIGHTS cycle, a TIME_WAIT entry, ... would hold its port or name for the next run."""
        nudged = False
        for _ in range(40):
            used, tw = _sockstat()
            if tw:
                return False
            if used <= self.sockets:
                return True
            if not nudged:  # closing a unix socket schedules the kernel's unix garbage collector
                a, b = socket.socketpair()
                a.close()
                b.close()
                nudged = True
            time.sleep(0.0025)
        return False


def _realtime(on: bool) -> bool:
    """SCHED_FIFO for the watcher of a long run: its wake-ups and the stop then wait for no task of the run,
    which bounds the run's CPU past its limits (see _bounds.py). Between runs, and for the first
    _REALTIME_AFTER_S of each, it is an ordinary task at nice -20 (a real-time watcher costs short runs ~10%)."""
    try:
        if on:
            os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(1))
        else:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        return on
    except (OSError, AttributeError):
        return False


def _pack_fds(*fds: int) -> bytes:
    return struct.pack(f"{len(fds)}i", *fds)


def _read_some(fd: int, buf: bytearray, room: int, poller: select.poll, open_fds: set[int]) -> int:
    try:
        data = os.read(fd, max(1, min(1 << 16, room + 1)))
    except BlockingIOError:
        return 0
    if not data:
        poller.unregister(fd)
        open_fds.discard(fd)
        return 0
    buf += data
    return len(data)
