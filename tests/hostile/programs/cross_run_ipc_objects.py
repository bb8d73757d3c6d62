# hostile: cross-run — SysV message queue, semaphore set, shared memory and a POSIX message queue left for the
# next run (they live in the IPC namespace, not in any process or file the wipe sees)
# expect: {"twice": true, "ok": true, "stdout_has": ["planted"]}
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
KEY = 0x42F00D
found = [name for name, fn in (("msg", libc.msgget), ("sem", lambda k, f: libc.semget(k, 1, f)),
                               ("shm", lambda k, f: libc.shmget(k, 4096, f))) if fn(KEY, 0) >= 0]
libc.mq_open.restype = ctypes.c_int
if libc.mq_open(b"/budgetflow-hostile", os.O_RDONLY) >= 0:
    found.append("mqueue")
if found:
    print("ESCAPED: an earlier run's IPC objects are here:", found)
for fn in (libc.msgget, lambda k, f: libc.semget(k, 1, f), lambda k, f: libc.shmget(k, 4096, f)):
    if fn(KEY, 0o1600) < 0:  # IPC_CREAT | 0600
        print("could not create", ctypes.get_errno())
q = libc.mq_open(b"/budgetflow-hostile", os.O_RDWR | os.O_CREAT, 0o600, None)
if q < 0:
    print("mq_open failed", ctypes.get_errno())
print("planted")
