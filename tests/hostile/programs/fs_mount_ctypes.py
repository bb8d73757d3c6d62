# hostile: filesystem — mount(2) through ctypes to remount / read-write
# expect: {"stdout_has": ["denied"]}
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
r1 = libc.mount(b"none", b"/", None, 0x20, None)  # MS_REMOUNT
r2 = libc.mount(b"tmpfs", b"/usr", b"tmpfs", 0, None)
print("ESCAPED" if 0 in (r1, r2) else f"denied {ctypes.get_errno()}")
