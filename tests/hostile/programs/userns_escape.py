# hostile: setuid tricks — a new user namespace to become "root" and mount things
# expect: {"stdout_has": ["denied"]}
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
r = libc.unshare(0x10000000 | 0x20000)  # CLONE_NEWUSER | CLONE_NEWNS
print("ESCAPED" if r == 0 else f"denied {ctypes.get_errno()}")
