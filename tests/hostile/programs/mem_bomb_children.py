# hostile: memory bomb — several children each allocating 40 MiB (the limit is for the whole run)
# expect: {"killed_by": ["memory", "processes"]}
import os, time
pids = []
for _ in range(8):
    pid = os.fork()
    if pid == 0:
        x = bytearray(40 << 20)
        for i in range(0, len(x), 4096):
            x[i] = 1
        time.sleep(1)  # survivors finish well inside the timeout: the run ends on the killed child
        os._exit(0)
    pids.append(pid)
for pid in pids:
    _, st = os.waitpid(pid, 0)
    if st:
        raise SystemExit(f"child died: {st}")
