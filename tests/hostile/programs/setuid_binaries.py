# hostile: setuid tricks — run setuid-root binaries (su, passwd, mount) hoping for euid 0
# expect: {"stdout_lacks": ["uid=0"]}
import os, subprocess
for argv in (["su", "-c", "id"], ["passwd", "-S"], ["mount", "-t", "tmpfs", "x", "/mnt"], ["newgrp"]):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=2, stdin=subprocess.DEVNULL)
        print(argv[0], p.returncode, p.stdout[:80], p.stderr[:80])
    except (OSError, subprocess.TimeoutExpired) as e:
        print(argv[0], "failed", type(e).__name__)
print(subprocess.run(["id"], capture_output=True, text=True).stdout)
