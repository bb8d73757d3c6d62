# hostile: filesystem — write outside the work dir (system dirs and the host path the test watches)
# expect: {}
import os
for path in ("/etc/budgetflow-pwned", "/usr/lib/pwned.py", "/pwned", "/var/tmp/pwned", "@@MARKER_PATH@@"):
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("x")
        print("wrote", path)  # only the sandbox's own /tmp may accept this; the test checks the host
    except OSError as e:
        print("denied", path, e.errno)
