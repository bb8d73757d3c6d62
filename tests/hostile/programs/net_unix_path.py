# hostile: network — unix socket file the test listens on under the host's /tmp
# expect: {"stdout_has": ["blocked"]}
import socket
s = socket.socket(socket.AF_UNIX)
try:
    s.connect("@@UNIX_PATH@@")
    print("ESCAPED")
except OSError as e:
    print("blocked", e)
