# hostile: fork bomb — raw fork(2) through ctypes, no Python involved
# expect: {"killed_by": ["processes", "timeout", "cpu", "memory"]}
import ctypes
libc = ctypes.CDLL(None)
while True:
    libc.fork()
