"""Sandbox helper, one-time set-up: the read-only root every run sees, the seccomp
filter, cgroup access and a pool of network namespaces. Helper-side (stdlib + pyseccomp).
"""
from __future__ import annotations

import importlib.util
import os
import stat
import sys
import types

import _cgroups
import _linux as L
import _seccomp

# Directory on the host used only as a mount point inside the helper's private namespace.
ROOT_MOUNTPOINT = "/tmp/.budgetflow-sandbox-root"
NEWROOT = ROOT_MOUNTPOINT
ALLOW_TOP = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc")
DEV_NODES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9)}


class Config:
    def __init__(self, bpf: bytes, cgroups: _cgroups.Cgroups, python: str, stdlib_path: list[str]) -> None:
        self.bpf, self.cgroups, self.python, self.stdlib_path = bpf, cgroups, python, stdlib_path
        self.own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY)  # to undo unshare(CLONE_NEWPID)
        self.netns_pool: list[int] = []  # see make_netns_pool


def _bind(src: str, dst: str) -> None:
    L.mount(src, dst, None, L.MS_BIND | L.MS_REC)


def _covered(path: str) -> bool:
    real = os.path.realpath(path)
    tops = (os.path.realpath("/" + t) for t in ALLOW_TOP if os.path.exists("/" + t))
    return any(real == t or real.startswith(t + "/") for t in tops)


def build_root(python_dirs: list[str], mounts: list[tuple[str, str]] = ()) -> None:
    """Populate NEWROOT with read-only binds of system dirs only: no /root, /home, /work,
    /var, /run, /tmp, /sys of the host. The interpreter's prefix is added if it lives elsewhere,
    and each (host dir, sandbox path) of ``mounts`` (an environment's venv)."""
    L.unshare(L.CLONE_NEWNS)
    L.mount(None, "/", None, L.MS_REC | L.MS_PRIVATE)
    os.makedirs(ROOT_MOUNTPOINT, mode=0o700, exist_ok=True)
    # not nodev: /dev's few nodes are made here rather than bind-mounted, since every
    # mount is copied into and torn down with each run's mount namespace
    L.mount("tmpfs", NEWROOT, "tmpfs", L.MS_NOSUID, "size=1m,mode=0755")
    for name in ALLOW_TOP:
        src, dst = "/" + name, f"{NEWROOT}/{name}"
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        elif os.path.isdir(src):
            os.mkdir(dst)
            _bind(src, dst)
    for d in python_dirs:
        if d and not _covered(d) and os.path.isdir(d):
            os.makedirs(NEWROOT + d, mode=0o755, exist_ok=True)
            _bind(d, NEWROOT + d)
    for src, dst in mounts:
        os.makedirs(NEWROOT + dst, mode=0o755, exist_ok=True)
        _bind(src, NEWROOT + dst)
    dev = f"{NEWROOT}/dev"
    os.mkdir(dev)
    for node, (major, minor) in DEV_NODES.items():
        os.mknod(f"{dev}/{node}", 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(f"{dev}/{node}", 0o666)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dev}/{name}")
    for d in ("dev/shm", "proc", "tmp", ".old"):
        os.mkdir(f"{NEWROOT}/{d}", 0o755)
    L.make_tree_readonly(NEWROOT)
    # The helper moves in itself: each run's mount namespace then copies this small tree
    # only, and no run has to pivot or detach the host's mounts (both cost milliseconds).
    os.chdir(NEWROOT)
    L.pivot_root(".", ".old")
    os.chdir("/")
    L.umount2("/.old", L.MNT_DETACH)


def load_pyseccomp(path: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("pyseccomp", path)
    assert spec and spec.loader, path
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def setup(pyseccomp_path: str, pool_netns: int = 0, python: str | None = None,
          mounts: list[tuple[str, str]] = ()) -> Config:
    bpf = _seccomp.build_bpf(load_pyseccomp(pyseccomp_path))
    cgroups = _cgroups.Cgroups.detect()  # holds directory fds: /sys is gone after build_root
    if cgroups is None:  # limits and measurements of a whole run (its CPU, memory, tasks) need them
        raise RuntimeError(f"the process backend needs cgroups: {_cgroups.Cgroups.why}")
    cgroups.sweep()
    here_python = os.path.realpath(sys.executable)
    dirs = sorted({sys.base_prefix, sys.prefix, os.path.dirname(here_python)})
    python = python or here_python  # what "{python}" runs: an environment's interpreter, else the helper's
    here = os.path.dirname(os.path.abspath(__file__))
    stdlib = [p for p in sys.path if p and not p.startswith(here)]
    cfg = Config(bpf, cgroups, python, stdlib)  # opens /proc/self/ns/pid: before the pivot
    if pool_netns:
        cfg.netns_pool = make_netns_pool(pool_netns)
    build_root(dirs, list(mounts))
    return cfg


def make_netns_pool(n: int) -> list[int]:
    """Network namespaces (loopback only) made once and lent to one run at a time.
    Creating and destroying one per run is the costliest namespace operation; after a
    run every process in it is dead, an unprivileged program can configure nothing in it,
    and the worker checks that no socket of the run is left (one kept alive by an
    SCM_RIGHTS cycle, a TIME_WAIT entry): if one is, the worker quits and the zygote
    drops the namespace instead of lending it again."""
    fds = []
    for _ in range(n):
        ready_r, ready_w = os.pipe()
        hold_r, hold_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(ready_r)
                os.close(hold_w)
                L.unshare(L.CLONE_NEWNET)
                L.loopback_up()
                os.write(ready_w, b"k")
                os.read(hold_r, 1)  # wait here until the parent has taken the namespace
            finally:
                os._exit(0)
        os.close(ready_w)
        os.close(hold_r)
        ok = os.read(ready_r, 1)
        os.close(ready_r)
        if ok:
            fds.append(os.open(f"/proc/{pid}/ns/net", os.O_RDONLY))  # keeps the namespace alive
        os.close(hold_w)
        os.waitpid(pid, 0)
    return fds
