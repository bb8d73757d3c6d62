"""Runs inside a Docker container: ``python3 -I -c SRC B64CHUNK...`` runs one request;
``python3 -I -c SRC --serve`` (pool containers) serves length-prefixed requests on stdin
and answers on stdout, one after another, so a pooled run costs no ``docker exec``.

The runner is uid 0 holding only CHOWN, SETUID, SETGID and KILL; the program runs as
nobody with no capabilities, so it can neither signal nor trace the runner.

Writes the request's files into a fresh dir under /tmp, runs the program with rlimits,
a wall clock and an output cap, kills every process it left behind, wipes /tmp, and
prints one JSON line of facts for the host to classify. The container's cgroup holds
the memory and pids limits; its counters tell whether they were hit. Stdlib only; the
host passes this file's text, so the image needs nothing but python3.
"""
import base64
import json
import os
import resource
import select
import shutil
import signal
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


def _wipe_all():
    for top in ("/tmp", "/dev/shm"):
        if os.path.isdir(top):
            _wipe(top)


def _wipe(top):
    for name in os.listdir(top):
        path = os.path.join(top, name)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
        except OSError:
            pass


def _serve_one(req):
    try:
        facts = _run(req)
    finally:  # whatever happened, the next run in this container starts clean
        _kill_program()
        _as_nobody(_wipe_all)  # the files are nobody's; the runner holds no DAC override
    facts["stdout"] = base64.b64encode(facts["stdout"]).decode()
    facts["stderr"] = base64.b64encode(facts["stderr"]).decode()
    return json.dumps(facts)


def main():
    if sys.argv[1:] == ["--serve"]:
        rd, wr = sys.stdin.buffer, sys.stdout.buffer
        while True:
            head = rd.read(8)
            if len(head) < 8:
                return  # the host closed the stream: the container's pid 1 exits with us
            blob = rd.read(int.from_bytes(head, "big"))
            answer = _serve_one(json.loads(zlib.decompress(blob))).encode()
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
    cpu = max(1, int(lim["cpu_s"] + 0.999))

    def limit_child():
        os.setsid()
        with open("/proc/self/oom_score_adj", "w") as f:  # the OOM killer should take the program
            f.write("1000")
        for res, val in ((resource.RLIMIT_CPU, (cpu, cpu + 1)),
                         (resource.RLIMIT_FSIZE, (lim["file_size_bytes"],) * 2),
                         (resource.RLIMIT_NOFILE, (lim["open_files"],) * 2),
                         (resource.RLIMIT_CORE, (0, 0))):
            resource.setrlimit(res, val)
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)

    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work, "TMPDIR": "/tmp", "LANG": "C.UTF-8",
           "PYTHONDONTWRITEBYTECODE": "1", **req.get("env", {})}
    stdin = base64.b64decode(req.get("stdin") or "")
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)  # cumulative: a --serve runner serves many runs
    start = time.monotonic()
    try:
        proc = subprocess.Popen(req["argv"], cwd=work, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, preexec_fn=limit_child, close_fds=True)
    except OSError as e:
        return {"status": 127 << 8, "stdout": b"", "duration_s": 0.0,
                "stderr": f"cannot execute {req['argv'][0]!r}: {e}\n".encode()}
    facts = _watch(proc, stdin, lim, start)
    facts["duration_s"] = time.monotonic() - start
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    facts["cpu_s"] = (ru.ru_utime - ru0.ru_utime) + (ru.ru_stime - ru0.ru_stime)
    _kill_program()  # whatever it left running
    oom1, pids1 = _cg_counts()
    facts["oom_killed"], facts["pids_hit"] = oom1 > oom0, pids1 > pids0
    facts["peak_memory_bytes"] = _peak()
    vfs = os.statvfs("/tmp")
    facts["disk_full"] = vfs.f_bavail == 0 or vfs.f_favail == 0
    return facts


def _watch(proc, stdin, lim, start):
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
    timed_out = capped = False
    deadline = start + lim["timeout_s"]
    reaped_rest = False
    while open_fds or proc.poll() is None:
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
                proc.wait(timeout=left)
            except subprocess.TimeoutExpired:
                continue
            break
        for fd, ev in poller.poll(max(1, int(left * 1000) + 1)):
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
    if timed_out or capped:
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
    status = None if (timed_out or capped) else _raw_status(proc.returncode)
    return {"timed_out": timed_out, "output_capped": capped, "stdout": out, "stderr": err, "status": status}


def _raw_status(returncode):
    return (-returncode) & 0x7F if returncode < 0 else (returncode & 0xFF) << 8


main()
