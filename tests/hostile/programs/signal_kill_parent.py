# hostile: signals — SIGKILL the parent and pid 1
# expect: {"stdout_has": ["still here"]}
import os, signal
for pid in {os.getppid(), 1}:
    try:
        os.kill(pid, signal.SIGKILL)
        print("sent", pid)
    except OSError as e:
        print("denied", pid, e.errno)
print("still here")
