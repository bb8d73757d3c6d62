# hostile: secrets — enumerate host processes (pytest, the lead's services)
# expect: {"stdout_lacks": ["pytest", "dockerd", "postgres"]}
import os
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            print(pid, open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            pass
