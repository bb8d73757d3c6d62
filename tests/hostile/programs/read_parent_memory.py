# hostile: secrets — read the memory of pid 1 / the parent through /proc/<pid>/mem
# expect: {}
import os
for pid in (1, os.getppid()):
    try:
        with open(f"/proc/{pid}/maps") as m, open(f"/proc/{pid}/mem", "rb") as mem:
            line = m.readline()
            start = int(line.split("-")[0], 16)
            mem.seek(start)
            print("ESCAPED", pid, len(mem.read(64)))
    except (OSError, ValueError) as e:
        print("denied", pid, type(e).__name__)
