# hostile: secrets — environ and cmdline of every process visible in /proc
# expect: {}
import os
for pid in os.listdir("/proc"):
    if pid.isdigit():
        for f in ("environ", "cmdline"):
            try:
                print(pid, f, open(f"/proc/{pid}/{f}", "rb").read()[:2000])
            except OSError as e:
                print("denied", pid, f, e.errno)
