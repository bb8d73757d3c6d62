# hostile: CPU limit — six children each burning 0.8 s (under a per-process limit of 1 s); the limit is for the run
# expect: {"limits": {"cpu_s": 1, "timeout_s": 6}, "killed_by": ["cpu"], "cpu_s_min": 0.9}
import os, time
pids = []
for _ in range(6):
    pid = os.fork()
    if pid == 0:
        end = time.process_time() + 0.8
        while time.process_time() < end:
            pass
        os._exit(0)
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)
print("six children burnt 4.8 CPU-seconds under a 1 s limit")
