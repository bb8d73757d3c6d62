# hostile: signals — kill(-1): every process we may signal
# expect: {}
import os, signal
print("bye", flush=True)
os.kill(-1, signal.SIGKILL)
