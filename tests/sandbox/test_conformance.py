"""One behaviour contract, checked against every backend present (process warm/cold,
Docker fresh/pool). Limits are small so each check is quick and bounded."""
from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from budgetflow.sandbox import ExecResult, Limits, Sandbox, get_sandbox

MiB = 1 << 20
SMALL = Limits(timeout_s=5, cpu_s=2, memory_bytes=96 * MiB, max_processes=16, file_size_bytes=2 * MiB,
               disk_bytes=4 * MiB, output_bytes=64 * 1024)


def test_hello(box):
    r = box.run_python("print('hello', 6 * 7)")
    assert isinstance(r, ExecResult)
    assert r.ok and r.stdout == "hello 42\n" and r.stderr == ""
    assert r.killed_by is None and not r.timed_out and r.limits_hit == []
    assert 0 < r.duration_s < 5


def test_exit_code_and_stderr(box):
    r = box.run_python("import sys\nprint('to err', file=sys.stderr)\nsys.exit(3)")
    assert r.exit_code == 3 and r.stderr == "to err\n" and r.killed_by is None and not r.ok


def test_uncaught_exception_is_exit_1_with_traceback(box):
    r = box.run_python("def f():\n    raise ValueError('boom')\nf()")
    assert r.exit_code == 1 and "ValueError: boom" in r.stderr and "main.py" in r.stderr


def test_files_and_imports_from_work_dir(box):
    files = {"pkg/helper.py": "def double(x):\n    return 2 * x\n", "pkg/__init__.py": "",
             "data.bin": b"\x00\x01\x02"}
    r = box.run_python("from pkg.helper import double\nprint(double(21), open('data.bin','rb').read())",
                       files=files)
    assert r.stdout == "42 b'\\x00\\x01\\x02'\n", r.stderr


def test_run_argv_with_stdin(box):
    r = box.run(["sh", "-c", "tr a-z A-Z; echo done >&2"], stdin="shout\n")
    assert r.ok and r.stdout == "SHOUT\n" and r.stderr == "done\n"


def test_run_python_script_by_argv(box):
    r = box.run(["python3", "prog.py", "x", "y"], files={"prog.py": "import sys; print(sys.argv[1:])"})
    assert r.stdout == "['x', 'y']\n", r.stderr


def test_python_placeholder_is_the_backends_own_interpreter(box):
    r = box.run(["{python}", "-c", "import sys; print(sys.version_info[0], sys.argv[1:])", "x"])
    assert r.ok and r.stdout == "3 ['x']\n", r.stderr


def test_unicode_output(box):
    r = box.run_python("print('héllo ✓ 日本')")
    assert r.stdout == "héllo ✓ 日本\n"


def test_missing_program(box):
    r = box.run(["definitely-not-a-program-xyz"])
    assert r.exit_code == 127 and "definitely-not-a-program-xyz" in r.stderr


def test_unprivileged_and_read_only_root(box):
    src = ("import os\nprint(os.getuid() != 0, os.getgid() != 0)\n"
           "for p in ('/etc/x', '/usr/x', '/x'):\n"
           "    try:\n        open(p, 'w'); print('WROTE', p)\n"
           "    except OSError as e:\n        print('denied', e.errno)\n"
           "open('here.txt', 'w').write('ok'); print(open('here.txt').read())")
    r = box.run_python(src)
    assert r.stdout.splitlines()[0] == "True True"
    assert "WROTE" not in r.stdout and r.stdout.count("denied") == 3 and r.stdout.endswith("ok\n")


def test_every_run_starts_with_a_fresh_work_dir(box):
    box.run_python("open('leftover.txt', 'w').write('x')\nopen('/tmp/leftover2', 'w').write('x')")
    r = box.run_python("import os\nprint(sorted(os.listdir('.')), os.path.exists('/tmp/leftover2'))")
    assert r.stdout == "['main.py'] False\n"


def test_clean_environment(box):
    r = box.run_python("import os\nprint(sorted(os.environ))")
    names = eval(r.stdout)
    assert set(names) <= {"PATH", "HOME", "TMPDIR", "LANG", "PYTHONDONTWRITEBYTECODE", "LC_CTYPE", "HOSTNAME"}


def test_timeout(box):
    r = box.run_python("import time\nprint('start', flush=True)\ntime.sleep(30)",
                       limits=SMALL.model_copy(update={"timeout_s": 1.0}))
    assert r.timed_out and r.killed_by == "timeout" and r.exit_code < 0
    assert r.stdout == "start\n"
    assert 0.9 < r.duration_s < 4


def test_cpu_limit(box):
    r = box.run_python("while True:\n    pass", limits=SMALL.model_copy(update={"cpu_s": 1, "timeout_s": 10}))
    assert r.killed_by == "cpu" and not r.timed_out and r.cpu_s >= 0.9


def test_memory_limit(box):
    r = box.run_python("x = []\nwhile True:\n    x.append(bytearray(1 << 20))", limits=SMALL)
    assert r.killed_by == "memory" and r.exit_code != 0


def test_process_limit(box):
    r = box.run_python("import os\nwhile True:\n    os.fork()", limits=SMALL)
    assert r.killed_by == "processes" and "processes" in r.limits_hit


def test_file_size_limit(box):
    r = box.run_python("f = open('big', 'wb')\nwhile True:\n    f.write(b'x' * 65536)", limits=SMALL)
    assert r.killed_by == "file_size"


def test_disk_limit(box):
    r = box.run_python("i = 0\nwhile True:\n    open(f'f{i}', 'wb').write(b'x' * (1 << 20)); i += 1", limits=SMALL)
    assert r.killed_by == "disk"


def test_output_cap(box):
    r = box.run_python("while True:\n    print('y' * 999)", limits=SMALL)
    assert r.killed_by == "output" and r.output_truncated
    assert len(r.stdout.encode()) + len(r.stderr.encode()) <= SMALL.output_bytes


def test_limits_not_hit_leaves_no_reason(box):
    r = box.run_python("import os\npid = os.fork()\nif pid == 0:\n    os._exit(0)\nos.waitpid(pid, 0)\nprint('ok')",
                       limits=SMALL)
    assert r.ok and r.limits_hit == []


def test_network_off_cannot_reach_host_loopback(box):
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        srv.setblocking(False)
        port = srv.getsockname()[1]
        src = ("import socket\ns = socket.socket()\ns.settimeout(2)\n"
               f"try:\n    s.connect(('127.0.0.1', {port})); print('CONNECTED')\n"
               "except OSError as e:\n    print('blocked', type(e).__name__)")
        r = box.run_python(src)
        assert "blocked" in r.stdout and "CONNECTED" not in r.stdout
        with pytest.raises(BlockingIOError):
            srv.accept()


def test_private_loopback_works_inside(box):
    src = ("import socket, threading\nsrv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)\n"
           "def serve():\n    c, _ = srv.accept(); c.sendall(b'pong'); c.close()\n"
           "threading.Thread(target=serve).start()\n"
           "c = socket.create_connection(srv.getsockname()); print(c.recv(4).decode())")
    r = box.run_python(src)
    assert r.stdout == "pong\n", r.stderr


def test_bad_file_names_rejected(box):
    for bad in ("/etc/passwd", "../escape.py", ".."):
        with pytest.raises(ValueError):
            box.run_python("print(1)", files={bad: "x"})


def test_concurrent_callers(box):
    n = 16 if box.name.startswith("process") else 6

    def one(i: int) -> str:
        return box.run_python(f"import sys\nprint({i} * {i})\nsys.stdout.flush()").stdout

    with ThreadPoolExecutor(max_workers=4) as ex:
        outs = list(ex.map(one, range(n)))
    assert outs == [f"{i * i}\n" for i in range(n)]


def test_get_sandbox_and_protocol():
    box = get_sandbox("process")
    assert box is get_sandbox("process") and isinstance(box, Sandbox)
    assert get_sandbox("auto").run_python("print(1)").stdout == "1\n"
    assert Limits().network is False
    with pytest.raises(ValueError):
        get_sandbox("vm")  # type: ignore[arg-type]


def test_threads_in_process_backend_are_safe():
    box = get_sandbox("process")
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(5):
                assert box.run_python("print('t')").stdout == "t\n"
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_dev_stdout_works(box):
    src = ("open('/dev/stdout', 'w').write('out\\n')\nopen('/dev/stderr', 'w').write('err\\n')\n"
           "print(repr(open('/dev/stdin').read()))")
    r = box.run(["python3", "-c", src], stdin="in")
    assert r.ok and r.stdout == "out\n'in'\n" and r.stderr == "err\n", r.stderr


PLANT = '''
import ctypes, os, socket, threading, time
libc = ctypes.CDLL(None, use_errno=True)
libc.msgget(0x5EED, 0o1600); libc.semget(0x5EED, 1, 0o1600); libc.shmget(0x5EED, 4096, 0o1600)
libc.mq_open(b"/bf-conformance", os.O_RDWR | os.O_CREAT, 0o600, None)
for d in ("/tmp/ro-tmp", "/dev/shm/ro-shm", "ro-work"):
    os.makedirs(d + "/in")
    open(d + "/in/f", "w").write("x")
    os.chmod(d + "/in", 0o500)
    os.chmod(d, 0o500)
listener = socket.socket()
listener.bind(("127.0.0.1", 47999))
listener.listen()
a, b = socket.socketpair()
socket.send_fds(a, [b"x"], [a.fileno(), b.fileno(), listener.fileno()])
for s in (a, b, listener):
    s.close()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:  # a daemon whose main thread leaves with SYS_exit, its other thread lives on
        threading.Thread(target=time.sleep, args=(30,)).start()
        libc.syscall(60, 0)
    time.sleep(30)
print("planted")
'''
FIND = '''
import ctypes, os, socket
libc = ctypes.CDLL(None, use_errno=True)
found = [k for k, fn in (("msg", lambda: libc.msgget(0x5EED, 0)), ("sem", lambda: libc.semget(0x5EED, 1, 0)),
                         ("shm", lambda: libc.shmget(0x5EED, 4096, 0)),
                         ("mqueue", lambda: libc.mq_open(b"/bf-conformance", os.O_RDONLY))) if fn() >= 0]
found += [d for d in ("/tmp/ro-tmp", "/dev/shm/ro-shm", "ro-work") if os.path.exists(d)]
try:
    socket.socket().bind(("127.0.0.1", 47999))
except OSError:
    found.append("port")
for pid in os.listdir("/proc"):
    if pid.isdigit() and int(pid) != os.getpid() and os.stat(f"/proc/{pid}").st_uid == os.getuid():
        found.append(f"process {pid}")
print(found)
'''


def test_nothing_of_a_run_reaches_the_next(box):
    """Run A leaves all it can (IPC objects, read-only dirs, a listener in an SCM_RIGHTS cycle, a daemon
    with a thread of a zombie leader); run B, on the same warm worker unless the backend retired it,
    finds none of it and behaves as on a fresh one."""
    limits = SMALL.model_copy(update={"timeout_s": 3})
    a = box.run_python(PLANT, limits=limits)
    assert a.ok and a.stdout == "planted\n", a.stderr[-1500:]
    b = box.run_python(FIND, limits=limits)
    assert b.ok and b.stdout == "[]\n", b.stdout + b.stderr[-1500:]


def test_whole_run_measurements(box):
    """Processes and CPU of the whole run, children and orphans included."""
    src = ("import os, time\nr, w = os.pipe()\nfor _ in range(5):\n    if os.fork() == 0:\n        if os.fork() == 0:\n"
           "            end = time.process_time() + 0.1\n            while time.process_time() < end:\n"
           "                pass\n            os.write(w, b'.')\n            time.sleep(30)\n        os._exit(0)\n"
           "got = b''\nwhile len(got) < 5:\n    got += os.read(r, 5)\nprint('ok')")
    r = box.run_python(src, limits=SMALL)
    assert r.ok and r.stdout == "ok\n"
    assert 0.5 <= r.cpu_s <= box.max_cpu_seconds(SMALL), r.cpu_s  # five orphans' 0.1 s each
    if r.backend.startswith("process"):
        assert r.peak_processes is not None and r.peak_processes >= 6  # the program and five orphans at once
    assert r.peak_memory_bytes
