# hostile: cross-run — a forked child leaves with the raw exit syscall while one of its threads lives on holding
# memory and watching the work dir: if it outlives the run it rewrites the next run's file and eats its memory
# expect: {"twice": true, "ok": true, "stdout_has": ["checked"]}
import ctypes, os, threading, time, uuid
mine = os.path.join(os.getcwd(), "token")  # absolute: the next run's work dir sits at the same path
token = uuid.uuid4().hex
open(mine, "w").write(token)
if os.fork() == 0:
    hoard = bytearray(20 << 20)
    for i in range(0, len(hoard), 4096):
        hoard[i] = 1

    def linger():
        end = time.monotonic() + 6
        while time.monotonic() < end:
            try:
                seen = open(mine).read()
                if seen != token and "ESCAPED" not in seen:
                    open(mine, "w").write("ESCAPED: rewritten by a thread of an earlier run")
            except OSError:
                pass
            time.sleep(0.005)

    threading.Thread(target=linger).start()
    ctypes.CDLL(None).syscall(60, 0)  # SYS_exit: the child's main thread only, it becomes a zombie leader
work = bytearray(20 << 20)
for i in range(0, len(work), 4096):
    work[i] = 1
time.sleep(0.5)
seen = open(mine).read()
if seen != token:
    print("ESCAPED", seen)
print("checked")
