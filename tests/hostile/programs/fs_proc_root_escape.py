# hostile: filesystem — walk out through /proc/<pid>/root and /proc/<pid>/cwd of other processes
# expect: {}
import os
mine = os.stat("/")
for pid in os.listdir("/proc"):
    if pid.isdigit() and int(pid) != os.getpid():
        try:
            st = os.stat(f"/proc/{pid}/root")
            same = (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)
            print("same-root" if same else "ESCAPED", pid)
        except OSError as e:
            print("denied", pid, e.errno)
print("done")
