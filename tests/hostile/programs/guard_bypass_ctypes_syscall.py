# hostile: guard bypass — direct syscalls (fork=57, kill=62) through ctypes.syscall
# expect: {"killed_by": ["processes", "timeout", "cpu", "memory"]}
import ctypes
libc = ctypes.CDLL(None)
while True:
    libc.syscall(57)
