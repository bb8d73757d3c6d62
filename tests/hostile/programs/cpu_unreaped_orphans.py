# hostile: CPU limit — orphans (never reaped by the program) burn CPU that rusage of the program never sees
# expect: {"limits": {"cpu_s": 1, "timeout_s": 6}, "killed_by": ["cpu"], "cpu_s_min": 0.9}
import os, time
for _ in range(3):
    if os.fork() == 0:
        if os.fork() == 0:  # the grandchild re-parents away from us
            end = time.process_time() + 0.8
            while time.process_time() < end:
                pass
        os._exit(0)
time.sleep(3)
print("orphans burnt 2.4 CPU-seconds under a 1 s limit")
