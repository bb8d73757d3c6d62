"""Sandbox helper, per run: the worker (pid 1 of a pid namespace, serves runs one after
another), its template (forks programs, holds no run data) and the program itself.
See ``_helper.py`` for the whole picture. Helper-side (stdlib only).
"""
from __future__ import annotations

import atexit
import builtins
import os
import resource
import select
import signal
import socket
import struct
import sys
import time
import traceback
import types

import _linux as L
import _protocol as P
from _root import Config

UID_BASE = P.UID_BASE
_REAP_EVERY_S = 0.05  # the worker is pid 1: orphans become its zombies until reaped
_STATUS = struct.Struct("!iidd")  # pid, wait status, user s, system s


def _write_files(root: str, files: dict[str, bytes], uid: int) -> None:
    for rel, data in files.items():
        path = os.path.join(root, rel)
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            os.makedirs(parent, mode=0o755)
            d = parent
            while d != root:  # the program owns the directories we made for it
                os.chown(d, uid, uid)
                d = os.path.dirname(d)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.chown(path, uid, uid)


class Slot:
    """What the zygote gives one worker: uid, cgroup, network namespace."""

    def __init__(self, cfg: Config, seq: int, index: int, netns: int | None, network: bool) -> None:
        # uid unique among all live workers on the machine: zygote pid + a free index
        self.index = index
        self.uid = UID_BASE + (os.getpid() << 8) + index
        self.group = cfg.cgroups.create(f"bf-{cfg.cgroups.namespace}-{os.getpid()}-{seq}") if cfg.cgroups else None
        self.netns, self.network = netns, network


def worker(conn: socket.socket, cfg: Config, slot: Slot) -> None:
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
            _template(t_child, cfg, slot)
        finally:
            os._exit(0)
    t_child.close()
    w = Worker(cfg, slot, template_pid, t_parent)
    while True:
        try:
            hdr, payload_fd = P.recv_msg_fd(conn)
        except (EOFError, OSError):
            return
        try:
            facts = w.run(hdr, payload_fd)
        except Exception as e:
            facts = {"error": f"{type(e).__name__}: {e}", "before_start": isinstance(e, SetupFailed)}
        try:
            P.send_msg(conn, facts)
        except OSError:
            return
        if "error" in facts:
            return  # the client drops this worker; a new one starts clean


def _template(sock: socket.socket, cfg: Config, slot: Slot) -> None:
    """Forks one program per run and reports its pid and, once reaped, its status."""
    L.prctl(L.PR_SET_PDEATHSIG, signal.SIGKILL)
    while True:
        msg, fds, _flags, _addr = sock.recvmsg(16, socket.CMSG_SPACE(3 * 4))
        if not msg:
            return
        got = [struct.unpack("i", d[i:i + 4])[0] for _l, _k, d in fds for i in range(0, len(d) - 3, 4)]
        payload_fd, out_w, err_w = got
        pid = os.fork()
        if pid == 0:
            code = 127
            try:
                sock.close()
                _program(cfg, slot, payload_fd, out_w, err_w)
            except BaseException:
                try:
                    os.write(err_w, f"budgetflow sandbox setup failed:\n{traceback.format_exc()}".encode())
                except OSError:
                    pass
            finally:
                os._exit(code)
        for fd in got:
            os.close(fd)
        sock.send(_STATUS.pack(pid, 0, 0.0, 0.0))
        _, status, ru = os.wait4(pid, 0)
        sock.send(_STATUS.pack(pid, status, ru.ru_utime, ru.ru_stime))


class SetupFailed(RuntimeError):
    """A run could not be set up; the program never started."""


class Worker:
    def __init__(self, cfg: Config, slot: Slot, template_pid: int, tsock: socket.socket) -> None:
        self.cfg, self.slot, self.template_pid, self.tsock = cfg, slot, template_pid, tsock

    def run(self, hdr: dict, payload_fd: int | None) -> dict:
        if payload_fd is None:
            raise RuntimeError("request without its payload descriptor")
        lim, uid, group = hdr["limits"], self.slot.uid, self.slot.group
        if group:
            try:
                group.configure(lim["memory_bytes"], lim["max_processes"])
            except OSError as e:  # nothing has run yet: the client may retry on a fresh worker
                raise SetupFailed(f"could not set the run's cgroup limits: {e}") from e
            base = group.counters()
        inodes = max(1024, lim["disk_bytes"] // 4096)
        own = f"mode=0700,uid={uid},gid={uid}"
        L.mount("tmpfs", "/tmp", "tmpfs", L.MS_NOSUID | L.MS_NODEV,
                f"size={lim['disk_bytes']},nr_inodes={inodes},{own}")
        L.mount("tmpfs", "/dev/shm", "tmpfs", L.MS_NOSUID | L.MS_NODEV,
                f"size={min(lim['disk_bytes'], 16 << 20)},nr_inodes=256,{own}")
        try:
            return self._run(lim, payload_fd, group, base if group else (0, 0))
        finally:
            L.umount2("/dev/shm", L.MNT_DETACH)
            L.umount2("/tmp", L.MNT_DETACH)

    def _run(self, lim: dict, payload_fd: int, group, base: tuple[int, int]) -> dict:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            self.tsock.sendmsg([b"R"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                         struct.pack("3i", payload_fd, out_w, err_w))])
        finally:
            for fd in (payload_fd, out_w, err_w):
                os.close(fd)
        prog = _STATUS.unpack(self.tsock.recv(64))[0]
        start = time.monotonic()
        facts = self._watch(prog, lim, out_r, err_r, start)
        facts["duration_s"] = time.monotonic() - start
        vfs = os.statvfs("/tmp")
        facts["disk_full"] = vfs.f_bavail == 0 or vfs.f_favail == 0
        if group:
            oom, pids = group.counters()
            facts["oom_killed"], facts["pids_hit"] = oom > base[0], pids > base[1]
            facts["peak_memory_bytes"] = group.peak_memory()
        else:
            facts["oom_killed"] = facts["pids_hit"] = False
            facts["peak_memory_bytes"] = None
        facts["cgroups"] = group is not None
        return facts

    def _watch(self, prog: int, lim: dict, out_r: int, err_r: int, start: float) -> dict:
        """Pump the output until the template reports the program's status, the wall clock
        runs out or the output overflows; then kill whatever the run left behind."""
        poller = select.poll()
        bufs = {out_r: bytearray(), err_r: bytearray()}
        for fd in (out_r, err_r):
            os.set_blocking(fd, False)
            poller.register(fd, select.POLLIN)
        tfd = self.tsock.fileno()
        poller.register(tfd, select.POLLIN)
        cap, total = lim["output_bytes"], 0
        timed_out = capped = False
        status: int | None = None
        cpu_s = 0.0
        deadline = start + lim["timeout_s"]
        open_fds = {out_r, err_r}
        while status is None:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            for fd, _ev in poller.poll(max(1, int(min(left, _REAP_EVERY_S) * 1000) + 1)):
                if fd == tfd:
                    _pid, status, ut, st = _STATUS.unpack(self.tsock.recv(64))
                    cpu_s = ut + st
                elif fd in open_fds:
                    total += _read_some(fd, bufs[fd], cap - total, poller, open_fds)
                    if total > cap:
                        capped = True
            if capped:
                break
            self._reap_orphans()
        self._kill_run()
        if status is None:  # we killed it: the template still reports the reaped status
            if select.select([tfd], [], [], 5)[0]:
                self.tsock.recv(64)
        # What the program wrote before it exited is in the pipes; the writers are dead now.
        for fd in list(open_fds):
            while fd in open_fds and total <= cap:
                got = _read_some(fd, bufs[fd], cap - total, poller, open_fds)
                if got == 0:
                    break
                total += got
            if total > cap:
                capped = True
        for fd in (out_r, err_r):
            os.close(fd)
        out, err = bytes(bufs[out_r]), bytes(bufs[err_r])
        if capped:  # keep exactly the cap, stdout first
            out = out[:cap]
            err = err[: max(0, cap - len(out))]
        if timed_out or capped:
            status = None
        return {"timed_out": timed_out, "output_capped": capped, "stdout": out, "stderr": err,
                "status": status, "cpu_s": cpu_s}

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
                raise RuntimeError("sandbox template process died")

    def _kill_run(self) -> None:
        """SIGKILL every process in our pid namespace but us and the template, until none is left."""
        keep = {1, self.template_pid}
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            alive = False
            for name in os.listdir("/proc"):
                if not name.isdigit() or int(name) in keep:
                    continue
                try:
                    with open(f"/proc/{name}/stat", "rb") as f:
                        state = f.read().rsplit(b")", 1)[1].split()[0]
                except (OSError, IndexError):
                    continue
                if state in (b"Z", b"X"):
                    continue
                alive = True
                try:
                    os.kill(int(name), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self._reap_orphans()
            if not alive:
                return
            time.sleep(0.001)
        raise RuntimeError("could not stop the processes of a run")


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


def _program(cfg: Config, slot: Slot, payload_fd: int, out_w: int, err_w: int) -> None:
    """Forked by the template; root until _program_main drops everything."""
    L.prctl(L.PR_SET_PDEATHSIG, signal.SIGKILL)
    if slot.group:
        slot.group.join()
    L.unshare(L.CLONE_NEWIPC)  # SysV IPC and message queues die with the run
    with socket.socket(fileno=payload_fd) as s:
        s.settimeout(30)
        req = P.recv_msg(s)
    _write_files("/tmp", req["files"], slot.uid)
    stdin = req.get("stdin") or b""
    in_fd = os.memfd_create("stdin")  # the whole stdin, readable at the program's pace
    view = memoryview(stdin)
    while view:
        view = view[os.write(in_fd, view):]
    os.lseek(in_fd, 0, os.SEEK_SET)
    _program_main(req, cfg, req["limits"], slot.uid, in_fd, out_w, err_w)


def _program_main(req: dict, cfg: Config, lim: dict, uid: int, in_r: int, out_w: int, err_w: int) -> None:
    os.setsid()
    with open("/proc/self/oom_score_adj", "w") as f:  # the OOM killer should pick the program
        f.write("1000")
    for src, dst in ((in_r, 0), (out_w, 1), (err_w, 2)):
        os.dup2(src, dst)
    os.closerange(3, 1 << 16)
    cpu = max(1, int(lim["cpu_s"] + 0.999))
    rl = [(resource.RLIMIT_CPU, (cpu, cpu + 1)),
          (resource.RLIMIT_FSIZE, (lim["file_size_bytes"],) * 2),
          (resource.RLIMIT_NOFILE, (lim["open_files"],) * 2),
          (resource.RLIMIT_NPROC, (lim["max_processes"] + 1,) * 2),  # the pids cgroup binds first and is counted
          (resource.RLIMIT_CORE, (0, 0))]
    if not cfg.cgroups:  # no memory cgroup: address-space limit is the only memory bound
        rl.append((resource.RLIMIT_AS, (lim["memory_bytes"],) * 2))
    for res, val in rl:
        resource.setrlimit(res, val)
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    L.prctl(L.PR_SET_DUMPABLE, 1)  # the uid change cleared it; /proc/self must stay the program's own
    L.prctl(L.PR_SET_NO_NEW_PRIVS, 1)
    L.load_seccomp_bpf(cfg.bpf)
    os.chdir("/tmp")
    os.umask(0o022)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp",
           "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", **(req.get("env") or {})}
    for sig in (signal.SIGCHLD, signal.SIGXFSZ, signal.SIGXCPU, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    if req["mode"] == "inline":
        _run_inline(req["script"], req.get("args", []), env, cfg)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    argv = req["argv"]
    if argv and argv[0] == "{python}":  # the helper's own interpreter, readable inside the root
        argv = [cfg.python, *argv[1:]]
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as e:
        os.write(2, f"budgetflow sandbox: cannot execute {argv[0]!r}: {e}\n".encode())
        os._exit(127)


def _run_inline(script: str, args: list[str], env: dict[str, str], cfg: Config) -> None:
    """Warm path: run the script in this already-initialised interpreter, as `python script` would."""
    sys.argv = [script, *args]
    sys.path[:] = ["/tmp", *cfg.stdlib_path]
    os.environ.clear()
    os.environ.update(env)
    main = types.ModuleType("__main__")
    main.__file__ = f"/tmp/{script}"
    main.__builtins__ = builtins
    sys.modules["__main__"] = main
    code = 0
    try:
        with open(script, "rb") as f:
            src = f.read()
        exec(compile(src, script, "exec"), main.__dict__)
    except SystemExit as e:
        code = _exit_code(e.code)
    except BaseException as e:
        # as `python script` shows it: from the script's frame down, not ours
        traceback.print_exception(type(e), e, e.__traceback__.tb_next if e.__traceback__ else None)
        code = 1
    try:
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()  # type: ignore[attr-defined]
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        code = code or 120
    os._exit(code)


def _exit_code(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    try:
        sys.stderr.write(f"{value}\n")
    except Exception:
        pass
    return 1
