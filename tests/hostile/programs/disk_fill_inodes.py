# hostile: disk fill — exhaust inodes with empty files
# expect: {"killed_by": ["disk", "timeout"]}
import os
os.makedirs("d", exist_ok=True)
i = 0
while True:
    open(f"d/{i}", "w").close()
    i += 1
