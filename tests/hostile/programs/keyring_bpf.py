# hostile: kernel surface — keyctl, bpf, perf_event_open, io_uring (blocked by seccomp)
# expect: {"stdout_lacks": ["allowed"]}
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
for name, nr, args in (("keyctl", 250, (0, 0)), ("bpf", 321, (0, 0, 0)),
                       ("perf_event_open", 298, (0, 0, -1, -1, 0)), ("io_uring_setup", 425, (1, 0))):
    r = libc.syscall(nr, *args)
    print(name, "allowed" if r >= 0 else f"denied {ctypes.get_errno()}")
