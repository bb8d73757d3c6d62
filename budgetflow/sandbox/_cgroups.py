"""Per-worker cgroups so every limit binds, and every figure measures, the whole run: all its
processes and threads, reaped or not. Helper-side module, stdlib only.

cgroup v1 (memory, pids, cpuacct, freezer; cpu for an optional quota) or v2 (memory, pids, cpu
delegated to our cgroup). A worker's group serves its runs one after another; each run gets a
fresh child ``run`` in the pids hierarchy (v2: a child group) so its process peak and fork
refusals are its own. The run is stopped by the group, never by walking /proc: v1 freezes the
group, SIGKILLs every task listed and thaws it (nothing can fork in between); v2 writes cgroup.kill.

Every group is named ``bf-<pid namespace>-<zygote pid>-<seq>`` and created under the cgroup the
helper was started in, so the machine's own accounting still covers it; ``sweep`` removes the
ones a killed zygote left behind.
"""
from __future__ import annotations

import os
import signal
import time

RUN = "run"  # the per-run child group
V1_REQUIRED = ("memory", "pids", "cpuacct", "freezer")


def _own_paths() -> dict[str, str]:
    paths: dict[str, str] = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _id, ctrls, path = line.rstrip("\n").split(":", 2)
            for c in ctrls.split(",") if ctrls else [""]:
                paths[c] = path
    return paths


def pid_namespace() -> str:
    """This process's pid namespace id (the inode of /proc/self/ns/pid), part of every group's name."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "0"


def _mounts() -> list[tuple[str, str, str]]:
    with open("/proc/self/mounts") as f:
        return [tuple(line.split()[1:4]) for line in f]  # type: ignore[misc]


def _writable(path: str) -> bool:
    return os.path.isdir(path) and os.access(path, os.W_OK)


class Cgroups:
    """Where run groups can be created; ``detect`` returns None (with ``why``) when they cannot."""

    why = ""

    def __init__(self, version: int, dirs: dict[str, str]) -> None:
        self.version, self.dirs = version, dirs  # controller -> the helper's own group there
        self.namespace = pid_namespace()  # read now: the zygote later lives in a pid namespace of its own
        # fds, not paths: the helper pivots away from /sys after set-up. Co-mounted controllers share one.
        by_path = {p: os.open(p, os.O_RDONLY | os.O_DIRECTORY) for p in dict.fromkeys(dirs.values())}
        self.fds = {c: by_path[p] for c, p in dirs.items()}
        self.parents = list(by_path.values())

    @classmethod
    def detect(cls) -> "Cgroups | None":
        if os.geteuid() != 0:
            cls.why = "not root"
            return None
        own, mounts = _own_paths(), _mounts()
        v1: dict[str, str] = {}
        for mnt, fstype, opts in mounts:
            if fstype == "cgroup":
                for c in ("memory", "pids", "cpuacct", "freezer", "cpu"):
                    if c in opts.split(",") and c not in v1:
                        v1[c] = os.path.join(mnt, own.get(c, "/").lstrip("/"))
        if all(c in v1 and _writable(v1[c]) for c in V1_REQUIRED):
            if "cpu" in v1 and not _writable(v1["cpu"]):
                del v1["cpu"]
            return cls(1, v1)
        for mnt, fstype, _opts in mounts:
            if fstype == "cgroup2":
                base = os.path.join(mnt, own.get("", "/").lstrip("/"))
                try:
                    with open(os.path.join(base, "cgroup.subtree_control")) as f:
                        ctl = f.read().split()
                except OSError:
                    continue
                if "memory" in ctl and "pids" in ctl and _writable(base):
                    return cls(2, {"memory": base, "pids": base, "cpu": base})
        missing = [c for c in V1_REQUIRED if c not in v1 or not _writable(v1[c])]
        cls.why = (f"cgroup v1 controllers {', '.join(missing)} are not mounted writable, and no cgroup v2 "
                   "with memory and pids delegated was found")
        return None

    def sweep(self) -> int:
        """Remove groups whose runner is gone (a killed parent leaves them behind)."""
        removed = 0
        here = self.namespace
        for pfd in self.parents:
            try:
                names = os.listdir(pfd)
            except OSError:
                continue
            for name in names:
                parts = name.split("-")  # bf-<pid namespace>-<zygote pid>-<seq>
                if len(parts) != 4 or parts[0] != "bf" or not parts[2].isdigit():
                    continue
                # a pid means nothing in another pid namespace (a sandbox started inside a test's namespace
                # would take every outside owner for dead): only sweep the groups of our own namespace
                if parts[1] != here or os.path.exists(f"/proc/{parts[2]}"):
                    continue
                if _rmdir(pfd, f"{name}/{RUN}") and _rmdir(pfd, name):
                    removed += 1
        return removed

    def create(self, name: str) -> "RunGroup":
        return RunGroup(self, name)


def _write(dir_fd: int, fname: str, value: str) -> None:
    fd = os.open(fname, os.O_WRONLY, dir_fd=dir_fd)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _try_write(dir_fd: int, fname: str, value: str) -> bool:
    try:
        _write(dir_fd, fname, value)
        return True
    except OSError:
        return False


def _read(dir_fd: int, fname: str) -> str:
    try:
        fd = os.open(fname, os.O_RDONLY, dir_fd=dir_fd)
    except OSError:
        return ""
    try:
        return os.read(fd, 65536).decode()
    finally:
        os.close(fd)


def _counter(text: str, key: str) -> int:
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key:
            return int(parts[1])
    return 0


def _int(text: str) -> int | None:
    return int(text) if text.strip().isdigit() else None


def _rmdir(dir_fd: int, name: str) -> bool:
    """True when ``name`` is gone."""
    try:
        os.rmdir(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True


class RunGroup:
    """One worker's groups, reached through directory fds (the sandbox root has no /sys). The zygote
    creates them before forking the worker and removes them after; only a run's processes join."""

    def __init__(self, cg: Cgroups, name: str) -> None:
        self.cg, self.name = cg, name
        self._parents = list(cg.parents)
        by_parent: dict[int, int] = {}
        for pfd in self._parents:
            try:
                os.mkdir(name, 0o755, dir_fd=pfd)
            except FileExistsError:
                pass
            by_parent[pfd] = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=pfd)
        self.fd = {c: by_parent[p] for c, p in cg.fds.items()}  # controller -> the worker's group
        self._dirs = list(by_parent.values())
        self.run_fd: int | None = None  # the current run's child group (pids in v1)
        self._usage: int | None = None  # the worker's open cpuacct.usage
        self._quota: str | None = None  # last quota written
        self._fresh = False  # run_fd is a child no run has used yet
        if cg.version == 2:  # the run child needs its own pids (and cpu, memory) files
            for c in ("pids", "memory", "cpu"):
                _try_write(self.fd["pids"], "cgroup.subtree_control", f"+{c}")

    # -- one run ------------------------------------------------------------------------

    def recycle(self) -> None:
        """A fresh run child (a fresh process peak and fork-refusal count) in place of the last run's, whose
        tasks are all gone. The worker calls it between runs, after answering, off a run's critical path."""
        pfd = self.fd["pids"]
        if self.run_fd is not None:
            os.close(self.run_fd)
            self.run_fd = None
        _rmdir(pfd, RUN)
        os.mkdir(RUN, 0o755, dir_fd=pfd)
        self.run_fd = os.open(RUN, os.O_RDONLY | os.O_DIRECTORY, dir_fd=pfd)
        self._fresh = True

    def prepare(self, memory_bytes: int, max_pids: int, cpu_quota: float | None) -> None:
        """Limits for the next run, in a fresh run child (none of the last run's processes is left)."""
        if not self._fresh:
            self.recycle()
        self._fresh = False
        self._memory_limit(memory_bytes)
        self._cpu_quota(cpu_quota)
        _write(self.run_fd, "pids.max", str(max_pids))

    def _cpu_quota(self, cpus: float | None) -> None:
        """At most ``cpus`` CPUs' worth of time per 100 ms period (None: no quota)."""
        cpu = self.fd.get("cpu")
        quota = str(int(cpus * 100_000)) if cpus else None
        if cpu is None or quota == self._quota:
            return
        if cpus and cpus * 100_000 < 1000:
            raise ValueError(f"a CPU quota of {cpus} CPUs is below the kernel's 1 ms minimum")
        if self.cg.version == 1:
            _write(cpu, "cpu.cfs_period_us", "100000")
            _write(cpu, "cpu.cfs_quota_us", quota or "-1")
        else:
            _write(cpu, "cpu.max", f"{quota or 'max'} 100000")
        self._quota = quota

    def _memory_limit(self, memory_bytes: int) -> None:
        mem = self.fd["memory"]
        if self.cg.version == 2:
            _write(mem, "memory.max", str(memory_bytes))
            _try_write(mem, "memory.swap.max", "0")
            return
        # v1 wants limit <= memsw.limit at every step: raise memsw first, lower it last
        memsw_ok = _try_write(mem, "memory.memsw.limit_in_bytes", str(memory_bytes))
        if not _try_write(mem, "memory.limit_in_bytes", str(memory_bytes)):
            # cache charged by earlier runs exceeds the new limit and the kernel's reclaim gave up (EBUSY,
            # common on a loaded machine): drop the cache where the kernel offers force_empty, and retry
            for _ in range(20):
                _try_write(mem, "memory.force_empty", "0")
                if _try_write(mem, "memory.limit_in_bytes", str(memory_bytes)):
                    break
                time.sleep(0.05)
            else:
                _write(mem, "memory.limit_in_bytes", str(memory_bytes))  # raises the kernel's reason
        if not memsw_ok:  # absent without swap accounting, or it had to wait for the limit
            _try_write(mem, "memory.memsw.limit_in_bytes", str(memory_bytes))
        _try_write(mem, "memory.max_usage_in_bytes", "0")  # per-run peak

    def join(self) -> None:
        """Move the calling process in ("0" is the writer itself, whatever its pid namespace). Called by
        the program, a child of the template: by path, the worker's open run child is not inherited."""
        run = f"{RUN}/cgroup.procs"
        if self.cg.version == 2:
            _write(self.fd["pids"], run, "0")
            return
        for c, fd in self.fd.items():
            # each join is a migration, and costs: the cpu group only when the worker set a quota there
            if c != "cpu" or _read(fd, "cpu.cfs_quota_us").strip() not in ("", "-1"):
                _write(fd, run if c == "pids" else "cgroup.procs", "0")

    def cpu_ns(self) -> int:
        """CPU time of every task that ever ran in the group (v1 cpuacct; v2 cpu.stat)."""
        if self.cg.version == 2:
            return _counter(_read(self.fd["cpu"], "cpu.stat"), "usage_usec") * 1000
        if self._usage is None:  # kept open: the worker reads it every few milliseconds during a run
            self._usage = os.open("cpuacct.usage", os.O_RDONLY, dir_fd=self.fd["cpuacct"])
        return int(os.pread(self._usage, 64, 0) or b"0")

    def tasks(self) -> int:
        """Tasks of the run not yet released (zombies count until reaped)."""
        if self.run_fd is None:
            return 0
        return _int(_read(self.run_fd, "pids.current")) or 0

    def kill(self) -> None:
        """SIGKILL every task of the run; none can fork past it."""
        if self.run_fd is None:
            return
        if self.cg.version == 2:
            _write(self.run_fd, "cgroup.kill", "1")
            return
        frz = self.fd["freezer"]
        _write(frz, "freezer.state", "FROZEN")
        try:
            deadline = time.monotonic() + 0.5
            while _read(frz, "freezer.state").strip() != "FROZEN" and time.monotonic() < deadline:
                time.sleep(0.0005)
            for tid in _read(frz, "tasks").split():  # every thread: a zombie leader's live threads too
                try:
                    os.kill(int(tid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        finally:
            _write(frz, "freezer.state", "THAWED")

    def finish(self) -> dict:
        """What the run's own groups counted; call once every task is gone."""
        facts: dict = {"peak_processes": None, "pids_hit": False}
        if self.run_fd is not None:
            facts["peak_processes"] = _int(_read(self.run_fd, "pids.peak"))
            facts["pids_hit"] = _counter(_read(self.run_fd, "pids.events"), "max") > 0
            os.close(self.run_fd)
            self.run_fd = None
        return facts

    def oom_kills(self) -> int:
        """OOM kills so far (cumulative per worker: compare before and after a run)."""
        mem = self.fd["memory"]
        if self.cg.version == 1:
            return _counter(_read(mem, "memory.oom_control"), "oom_kill")
        return _counter(_read(mem, "memory.events"), "oom_kill")

    def peak_memory(self) -> int | None:
        return _int(_read(self.fd["memory"], "memory.max_usage_in_bytes" if self.cg.version == 1 else "memory.peak"))

    def remove(self) -> bool:
        """Try once (never blocks the zygote); False: still busy, call again later."""
        for fd in self._dirs + ([self.run_fd] if self.run_fd is not None else []):
            os.close(fd)
        self._dirs, self.run_fd = [], None
        self._parents = [p for p in self._parents if not (_rmdir(p, f"{self.name}/{RUN}") and _rmdir(p, self.name))]
        return not self._parents
