"""Runs inside a Docker container: ``python3 -I -c SRC B64CHUNK...`` runs one request;
``python3 -I -c SRC --serve`` (pool containers) serves length-prefixed requests on stdin
and answers on stdout, one after another, so a pooled run costs no ``docker exec``.

The runner is uid 0 holding only CHOWN, SETUID, SETGID and KILL; the program runs as
nobody with no capabilities, so it can neither signal nor trace the runner.

Writes the request's files into a fresh dir under /tmp, runs the program with rlimits,
a wall clock, the CPU of the container's cgroup (the whole run, less the runner's own) and
an output cap, kills every process it left behind, wipes /tmp, and prints one JSON line of
facts for the host to classify. The container's cgroup holds the memory and pids limits;
its counters tell whether they were hit. A pool container then checks that nothing of the
run is left (processes, files, IPC objects, sockets) and asks to be retired when anything
is. Stdlib only; the host passes this file's text, so the image needs nothing but python3.
"""
import base64
import json
import math
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import time
import zlib

MARK = "@@budgetflow-result@@"
NOBODY = 65534


def _counter(path, key):
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[0] == key:
                    return int(parts[1])
    except OSError:
        pass
    return 0


def _cg_counts():
    oom = _counter("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill") or _counter(
        "/sys/fs/cgroup/memory.events", "oom_kill")
    pids = _counter("/sys/fs/cgroup/pids/pids.events", "max") or _counter("/sys/fs/cgroup/pids.events", "max")
    return oom, pids


def _cpu_ns():
    """CPU time of every task that ever ran in the container (v1 cpuacct, v2 cpu.stat)."""
    for path in ("/sys/fs/cgroup/cpuacct/cpuacct.usage", "/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage"):
        try:
            with open(path) as f:
                return int(f.read())
        except (OSError, ValueError):
            pass
    return _counter("/sys/fs/cgroup/cpu.stat", "usage_usec") * 1000


def _self_cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _peak():
    for p in ("/sys/fs/cgroup/memory/memory.max_usage_in_bytes", "/sys/fs/cgroup/memory.peak"):
        try:
            with open(p) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            pass
    return None


def _as_nobody(fn):
    """Run fn in a child that is nobody: kill(-1) from there reaches exactly the program's
    processes (not pid 1, the idle process or this runner, which are root)."""
    try:
        pid = os.fork()
    except OSError:  # pids limit exhausted (fork bomb): fall back to killing by scan
        _kill_scan()
        return
    if pid == 0:
        try:
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            fn()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _kill_scan():
    for _ in range(100):
        found = False
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/status") as f:
                    uid = next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
                if uid == NOBODY:
                    found = True
                    os.kill(int(pid), signal.SIGKILL)
            except (OSError, StopIteration, ValueError):
                pass
        if not found:
            return
        time.sleep(0.01)


def _kill_program():
    def kill_all():
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
    _as_nobody(kill_all)


def _nobody_tasks():
    """Processes of the program still here (zombies count until docker-init reaps them)."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/status") as f:
                    if next(int(line.split()[1]) for line in f if line.startswith("Uid:")) == NOBODY:
                        found.append(int(pid))
            except (OSError, StopIteration, ValueError):
                pass
    return found


def _stop_all(wait_s=3.0):
    """Kill every process of the program until none is left; False if some would not go."""
    end = time.monotonic() + wait_s
    while _nobody_tasks():  # none left: none can be forking either, and no kill child is needed
        if time.monotonic() > end:
            return False
        _kill_program()
        time.sleep(0.001)
    return True


def _wipe_all():
    for top in ("/tmp", "/dev/shm"):
        if os.path.isdir(top):
            for name in os.listdir(top):
                _remove(os.path.join(top, name))


def _remove(path):
    """As the files' owner: a directory the program made read-only is made writable again first."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o700)
            for name in os.listdir(path):
                _remove(os.path.join(path, name))
            os.rmdir(path)
        else:
            os.unlink(path)
    except OSError:
        pass


def _sockstat():
    """(sockets, TIME_WAIT entries) of the container's network namespace."""
    used = tw = 0
    with open("/proc/net/sockstat") as f:
        for line in f:
            parts = line.split()
            if parts[:1] == ["sockets:"]:
                used = int(parts[2])
            elif parts[:1] == ["TCP:"]:
                tw = int(parts[parts.index("tw") + 1])
    return used, tw


def _leftovers(base_sockets, stopped):
    """What of the run is still in this container; the next run must not meet any of it."""
    left = [] if stopped else ["processes"]
    for top in ("/tmp", "/dev/shm"):
        if os.path.isdir(top) and os.listdir(top):
            left.append(f"files in {top}")
    for kind in ("msg", "sem", "shm"):  # SysV IPC lives in the container's IPC namespace, not in any file
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                if len(f.read().splitlines()) > 1:
                    left.append(f"SysV {kind}")
        except OSError:
            pass
    if os.path.isdir("/dev/mqueue") and os.listdir("/dev/mqueue"):
        left.append("POSIX message queues")
    for i in range(40):  # a closed socket may take a grace period to go; a cycle of SCM_RIGHTS waits for GC
        used, tw = _sockstat()
        if tw or used <= base_sockets:
            break
        if i == 0:  # closing a unix socket schedules the kernel's unix garbage collector
            a, b = socket.socketpair()
            a.close()
            b.close()
        time.sleep(0.0025)
    if tw or used > base_sockets:
        left.append("sockets")
    return left


def _serve_one(req, base_sockets=None):
    try:
        facts = _run(req)
    finally:  # whatever happened, the next run in this container starts clean
        stopped = _stop_all()
        _as_nobody(_wipe_all)  # the files are nobody's; the runner holds no DAC override
    if base_sockets is not None:  # a pool container: retire it rather than let anything reach the next run
        left = _leftovers(base_sockets, stopped)
        if left:
            facts["retire"] = left
    facts["stdout"] = base64.b64encode(facts["stdout"]).decode()
    facts["stderr"] = base64.b64encode(facts["stderr"]).decode()
    return json.dumps(facts)


def main():
    if sys.argv[1:] == ["--serve"]:
        rd, wr = sys.stdin.buffer, sys.stdout.buffer
        base_sockets = _sockstat()[0]
        while True:
            head = rd.read(8)
            if len(head) < 8:
                return  # the host closed the stream: the container's pid 1 exits with us
            blob = rd.read(int.from_bytes(head, "big"))
            answer = _serve_one(json.loads(zlib.decompress(blob)), base_sockets).encode()
            wr.write(len(answer).to_bytes(8, "big") + answer)
            wr.flush()
    else:
        req = json.loads(zlib.decompress(base64.b64decode("".join(sys.argv[1:]))))
        sys.stdout.write(MARK + _serve_one(req) + "\n")
        sys.stdout.flush()


def _run(req):
    lim = req["limits"]
    work = "/tmp/work"
    _as_nobody(_wipe_all)
    os.makedirs(work)
    for rel, b64 in req["files"].items():
        path = os.path.join(work, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(b64))
    for root, dirs, files in os.walk(work):
        for name in [root] + [os.path.join(root, n) for n in dirs + files]:
            os.chown(name, NOBODY, NOBODY)
    oom0, pids0 = _cg_counts()
    cpu = int(lim["cpu_s"] + 0.999) + 1  # per process, a backstop: the run's CPU is stopped at cpu_s first

    def limit_child():
        os.setsid()
        with open("/proc/self/oom_score_adj", "w") as f:  # the OOM killer should take the program
            f.write("1000")
        for res, val in ((resource.RLIMIT_CPU, (cpu, cpu + 1)),
                         (resource.RLIMIT_FSIZE, (lim["file_size_bytes"],) * 2),
                         (resource.RLIMIT_NOFILE, (lim["open_files"],) * 2),
                         (resource.RLIMIT_CORE, (0, 0)), (resource.RLIMIT_RTPRIO, (0, 0)),
                         (resource.RLIMIT_NICE, (0, 0))):
            resource.setrlimit(res, val)
        # below the runner in its own container's CPU share, so the runner's CPU check and stop come on time
        os.setpriority(os.PRIO_PROCESS, 0, 10)
        for fd in (0, 1, 2):  # the run's own pipes, so /dev/stdout (a re-open via /proc/self/fd) works
            os.fchown(fd, NOBODY, NOBODY)
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)

    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work, "TMPDIR": "/tmp", "LANG": "C.UTF-8",
           "PYTHONDONTWRITEBYTECODE": "1", **req.get("env", {})}
    stdin = base64.b64decode(req.get("stdin") or "")
    cpu0, self0 = _cpu_ns(), _self_cpu()  # the container's CPU, less the runner's own, is the run's
    start = time.monotonic()
    try:
        proc = subprocess.Popen(req["argv"], cwd=work, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, preexec_fn=limit_child, close_fds=True)
    except OSError as e:
        return {"status": 127 << 8, "stdout": b"", "duration_s": 0.0,
                "stderr": f"cannot execute {req['argv'][0]!r}: {e}\n".encode()}
    facts = _watch(proc, stdin, lim, start, cpu0, self0)
    facts["duration_s"] = time.monotonic() - start
    _stop_all()  # whatever it left running; then nothing of it can spend more
    facts["cpu_s"] = max(0.0, (_cpu_ns() - cpu0) / 1e9 - (_self_cpu() - self0))
    oom1, pids1 = _cg_counts()
    facts["oom_killed"], facts["pids_hit"] = oom1 > oom0, pids1 > pids0
    facts["peak_memory_bytes"] = _peak()
    vfs = os.statvfs("/tmp")
    facts["disk_full"] = vfs.f_bavail == 0 or vfs.f_favail == 0
    return facts


def _watch(proc, stdin, lim, start, cpu0, self0):
    bufs = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    poller = select.poll()
    for fd in bufs:
        os.set_blocking(fd, False)
        poller.register(fd, select.POLLIN)
    win = proc.stdin.fileno()
    pending = memoryview(stdin)
    if pending:
        os.set_blocking(win, False)
        poller.register(win, select.POLLOUT)
    else:
        proc.stdin.close()
    pidfd = os.pidfd_open(proc.pid)  # wakes the poll when the program exits
    poller.register(pidfd, select.POLLIN)
    cap, total, open_fds = lim["output_bytes"], 0, set(bufs)
    timed_out = capped = cpu_out = False
    deadline = start + lim["timeout_s"]
    poll_s = lim.get("cpu_poll_s", 0.01)
    cpu_cap = int(lim["cpu_s"] * 1e9)
    reaped_rest = False
    while open_fds or proc.poll() is None:
        if _cpu_ns() - cpu0 - (_self_cpu() - self0) * 1e9 >= cpu_cap:  # the container's, less the runner's
            cpu_out = proc.poll() is None
            _kill_program()
            break
        if not reaped_rest and proc.poll() is not None:
            # the program is done: what it left running dies now (as with the process backend),
            # which also closes any pipe a daemonised child still held
            reaped_rest = True
            _kill_program()
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        if not open_fds:  # output closed, wait for the exit
            try:
                proc.wait(timeout=min(left, poll_s))
            except subprocess.TimeoutExpired:
                continue
            break
        for fd, ev in poller.poll(max(1, math.ceil(min(left, poll_s) * 1000))):
            if fd == pidfd:
                poller.unregister(pidfd)
                continue
            if fd == win:
                try:
                    pending = pending[os.write(win, pending[:65536]):]
                except (BlockingIOError, BrokenPipeError):
                    pending = pending[:0] if ev & (select.POLLERR | select.POLLHUP) else pending
                if not pending:
                    poller.unregister(win)
                    proc.stdin.close()
                continue
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not data:
                poller.unregister(fd)
                open_fds.discard(fd)
                continue
            bufs[fd] += data
            total += len(data)
            if total > cap:
                capped = True
                break
        if capped:
            break
    if timed_out or capped or cpu_out:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
    proc.wait()
    os.close(pidfd)
    out, err = bytes(bufs[proc.stdout.fileno()]), bytes(bufs[proc.stderr.fileno()])
    if capped:
        out = out[:cap]
        err = err[: max(0, cap - len(out))]
    status = None if (timed_out or capped or cpu_out) else _raw_status(proc.returncode)
    return {"timed_out": timed_out, "output_capped": capped, "cpu_killed": cpu_out, "stdout": out, "stderr": err,
            "status": status}


def _raw_status(returncode):
    return (-returncode) & 0x7F if returncode < 0 else (returncode & 0xFF) << 8


main()
