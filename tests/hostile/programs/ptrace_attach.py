# hostile: ptrace — attach to pid 1 and the parent; PTRACE_TRACEME
# expect: {"stdout_lacks": ["attached"]}
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
for pid in (1, os.getppid()):
    r = libc.ptrace(16, pid, None, None)  # PTRACE_ATTACH
    print("attached" if r == 0 else f"denied {ctypes.get_errno()}", pid)
print("traceme", libc.ptrace(0, 0, None, None))
