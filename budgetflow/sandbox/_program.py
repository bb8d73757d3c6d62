"""Sandbox helper, the run side: the template (the worker's first child, forks one program per
run and holds no run data) and the program itself. See ``_helper.py`` for the whole picture.
Helper-side (stdlib only).

Template <-> worker messages carry the run's id, so a late message of one run can never be
taken for another's: ``b"R" + id`` (with the run's descriptors) starts a run; the template
answers STARTED with the program's pid, then EXITED with its wait status once reaped.
"""
from __future__ import annotations

import atexit
import builtins
import os
import resource
import signal
import socket
import struct
import sys
import traceback
import types

import _linux as L
import _protocol as P

START = struct.Struct("!cQ")  # b"R", run id
REPORT = struct.Struct("!QBii")  # run id, kind, pid, wait status
STARTED, EXITED = 0, 1


def template(sock: socket.socket, cfg, slot) -> None:
    """Forks one program per run and reports its pid and, once reaped, its status."""
    L.prctl(L.PR_SET_PDEATHSIG, signal.SIGKILL)
    while True:
        msg, fds, _flags, _addr = sock.recvmsg(START.size, socket.CMSG_SPACE(3 * 4))
        if not msg:
            return
        got = [struct.unpack("i", d[i:i + 4])[0] for _l, _k, d in fds for i in range(0, len(d) - 3, 4)]
        _r, run_id = START.unpack(msg)
        payload_fd, out_w, err_w = got
        pid = os.fork()
        if pid == 0:
            try:
                sock.close()
                program(cfg, slot, payload_fd, out_w, err_w)
            except BaseException:
                try:
                    os.write(err_w, f"budgetflow sandbox setup failed:\n{traceback.format_exc()}".encode())
                except OSError:
                    pass
            finally:
                os._exit(127)
        for fd in got:
            os.close(fd)
        sock.send(REPORT.pack(run_id, STARTED, pid, 0))
        # returns once every thread of the program is gone (the worker kills them all by cgroup)
        _, status = os.waitpid(pid, 0)
        sock.send(REPORT.pack(run_id, EXITED, pid, status))


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


def program(cfg, slot, payload_fd: int, out_w: int, err_w: int) -> None:
    """Forked by the template; root until _program_main drops everything."""
    L.prctl(L.PR_SET_PDEATHSIG, signal.SIGKILL)
    slot.group.join()  # first: whatever the run does from here on is limited and counted
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


def _program_main(req: dict, cfg, lim: dict, uid: int, in_r: int, out_w: int, err_w: int) -> None:
    os.setsid()
    with open("/proc/self/oom_score_adj", "w") as f:  # the OOM killer should pick the program
        f.write("1000")
    for src, dst in ((in_r, 0), (out_w, 1), (err_w, 2)):
        os.dup2(src, dst)
        # the run's own stdio, so /dev/stdout (a re-open through /proc/self/fd/1) works for it; these
        # inodes belong to this run only, the uid gains nothing else
        os.fchown(dst, uid, uid)
    os.closerange(3, 1 << 16)
    # per process, a backstop only: the worker stops the whole run at cpu_s on its cgroup first
    cpu = int(lim["cpu_s"] + 0.999) + 1
    rl = [(resource.RLIMIT_CPU, (cpu, cpu + 1)),
          (resource.RLIMIT_FSIZE, (lim["file_size_bytes"],) * 2),
          (resource.RLIMIT_NOFILE, (lim["open_files"],) * 2),
          (resource.RLIMIT_NPROC, (lim["max_processes"] + 1,) * 2),  # the pids cgroup binds first and is counted
          (resource.RLIMIT_CORE, (0, 0)),
          # no real-time class and no nice below 0: nothing of the run may outrank the worker watching it
          (resource.RLIMIT_RTPRIO, (0, 0)), (resource.RLIMIT_NICE, (0, 0))]
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


def _run_inline(script: str, args: list[str], env: dict[str, str], cfg) -> None:
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
