# hostile: kernel surface — io_uring (its own syscalls bypass the seccomp view of read/write/openat/connect)
# expect: {"stdout_has": ["blocked"]}
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
params = ctypes.create_string_buffer(120)
fd = libc.syscall(425, 4, params)  # io_uring_setup(entries, params)
if fd >= 0:
    print("ESCAPED: io_uring_setup returned", fd)
else:
    print("blocked", ctypes.get_errno())
