# hostile: fork bomb — each child re-runs this script through subprocess
# expect: {"killed_by": ["processes", "timeout", "cpu", "memory"]}
import subprocess, sys
while True:
    subprocess.Popen([sys.executable, __file__])
