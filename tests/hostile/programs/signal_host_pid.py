# hostile: signals — kill the test process by its host pid and a spread of low pids
# expect: {}
import os, signal
for pid in [@@HOST_PID@@] + list(range(2, 400)):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
print("tried")
