"""Per-run cgroups (memory + pids) so limits bind for real and the result can say
which one was hit. Works with cgroup v1 (memory/pids hierarchies) or v2 (when the
controllers are delegated to our cgroup). Helper-side module, stdlib only.

Every group is named ``bf-<pid namespace>-<zygote pid>-<run>`` and created under the cgroup the helper
was started in, so the machine's own accounting still covers it; ``sweep`` removes the
ones a killed zygote left behind.
"""
from __future__ import annotations

import os
import time


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


class Cgroups:
    """Locates where run groups can be created; ``None`` from ``detect`` means no cgroups."""

    def __init__(self, version: int, mem_dir: str, pids_dir: str) -> None:
        self.version, self.mem_dir, self.pids_dir = version, mem_dir, pids_dir
        self.namespace = pid_namespace()  # read now: the zygote later lives in a pid namespace of its own
        # fds, not paths: the helper pivots away from /sys after set-up
        self.mem_fd = os.open(mem_dir, os.O_RDONLY | os.O_DIRECTORY)
        self.pids_fd = self.mem_fd if pids_dir == mem_dir else os.open(pids_dir, os.O_RDONLY | os.O_DIRECTORY)

    @classmethod
    def detect(cls) -> "Cgroups | None":
        if os.geteuid() != 0:
            return None
        own, mounts = _own_paths(), _mounts()
        v1: dict[str, str] = {}
        for mnt, fstype, opts in mounts:
            if fstype == "cgroup":
                for c in ("memory", "pids"):
                    if c in opts.split(","):
                        v1[c] = mnt
        if "memory" in v1 and "pids" in v1:
            mem = os.path.join(v1["memory"], own.get("memory", "/").lstrip("/"))
            pids = os.path.join(v1["pids"], own.get("pids", "/").lstrip("/"))
            if cls._writable(mem) and cls._writable(pids):
                return cls(1, mem, pids)
        for mnt, fstype, _opts in mounts:
            if fstype == "cgroup2":
                base = os.path.join(mnt, own.get("", "/").lstrip("/"))
                try:
                    with open(os.path.join(base, "cgroup.subtree_control")) as f:
                        ctl = f.read().split()
                except OSError:
                    continue
                if "memory" in ctl and "pids" in ctl and cls._writable(base):
                    return cls(2, base, base)
        return None

    @staticmethod
    def _writable(path: str) -> bool:
        return os.path.isdir(path) and os.access(path, os.W_OK)

    def sweep(self) -> int:
        """Remove groups whose runner is gone (a killed parent leaves them behind)."""
        removed = 0
        for parent in {self.mem_dir, self.pids_dir}:
            try:
                names = os.listdir(parent)
            except OSError:
                continue
            here = self.namespace
            for name in names:
                parts = name.split("-")  # bf-<pid namespace>-<zygote pid>-<seq>
                if len(parts) != 4 or parts[0] != "bf" or not parts[2].isdigit():
                    continue
                # a pid means nothing in another pid namespace (a sandbox started inside a test's namespace
                # would take every outside owner for dead): only sweep the groups of our own namespace
                if parts[1] != here or os.path.exists(f"/proc/{parts[2]}"):
                    continue
                try:
                    os.rmdir(os.path.join(parent, name))
                    removed += 1
                except OSError:
                    pass
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


class RunGroup:
    """One worker's memory+pids group, reached through directory fds (the sandbox root has
    no /sys). The zygote creates it before forking the worker and removes it after."""

    def __init__(self, cg: Cgroups, name: str) -> None:
        self.cg, self.name = cg, name
        self._parents: list[int] = list(dict.fromkeys([cg.mem_fd, cg.pids_fd]))
        self._dirs: list[int] = []
        for pfd in self._parents:
            try:
                os.mkdir(name, 0o755, dir_fd=pfd)
            except FileExistsError:
                pass
            self._dirs.append(os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=pfd))
        self.mem_fd, self.pids_fd = self._dirs[0], self._dirs[-1]

    def configure(self, memory_bytes: int, max_pids: int) -> None:
        """Limits for the next run (a worker's group serves its runs one after another)."""
        if self.cg.version == 1:
            # v1 wants limit <= memsw.limit at every step: raise memsw first, lower it last
            memsw_ok = _try_write(self.mem_fd, "memory.memsw.limit_in_bytes", str(memory_bytes))
            if not _try_write(self.mem_fd, "memory.limit_in_bytes", str(memory_bytes)):
                # cache charged by earlier runs exceeds the new limit and the kernel's reclaim gave up (EBUSY,
                # common on a loaded machine): drop the cache where the kernel offers force_empty, and retry
                for _ in range(20):
                    _try_write(self.mem_fd, "memory.force_empty", "0")
                    if _try_write(self.mem_fd, "memory.limit_in_bytes", str(memory_bytes)):
                        break
                    time.sleep(0.05)
                else:
                    _write(self.mem_fd, "memory.limit_in_bytes", str(memory_bytes))  # raises the kernel's reason
            if not memsw_ok:  # absent without swap accounting, or it had to wait for the limit
                _try_write(self.mem_fd, "memory.memsw.limit_in_bytes", str(memory_bytes))
            _try_write(self.mem_fd, "memory.max_usage_in_bytes", "0")  # per-run peak
        else:
            _write(self.mem_fd, "memory.max", str(memory_bytes))
            try:
                _write(self.mem_fd, "memory.swap.max", "0")
            except OSError:
                pass
        _write(self.pids_fd, "pids.max", str(max_pids))

    def join(self) -> None:
        """Move the calling process in ("0" is the writer itself, whatever its pid namespace)."""
        for d in self._dirs:
            _write(d, "cgroup.procs", "0")

    def counters(self) -> tuple[int, int]:
        """(OOM kills, fork refusals at pids.max) so far; compare before and after a run."""
        if self.cg.version == 1:
            oom = _counter(_read(self.mem_fd, "memory.oom_control"), "oom_kill")
        else:
            oom = _counter(_read(self.mem_fd, "memory.events"), "oom_kill")
        return oom, _counter(_read(self.pids_fd, "pids.events"), "max")

    def peak_memory(self) -> int | None:
        text = _read(self.mem_fd, "memory.max_usage_in_bytes" if self.cg.version == 1 else "memory.peak")
        return int(text) if text.strip().isdigit() else None

    def remove(self) -> bool:
        """Try once (never blocks the zygote); False: still busy, call again later."""
        if self._dirs:
            for d in self._dirs:
                os.close(d)
            self._dirs = []
        for pfd in list(self._parents):
            try:
                os.rmdir(self.name, dir_fd=pfd)
            except FileNotFoundError:
                pass
            except OSError:
                continue
            self._parents.remove(pfd)
        return not self._parents
