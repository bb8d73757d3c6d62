# hostile: network — connect to the test's listener on ::1
# expect: {"stdout_has": ["blocked"]}
import socket
try:
    s = socket.socket(socket.AF_INET6)
    s.settimeout(2)
    s.connect(("::1", @@PORT6@@))
    print("ESCAPED")
except OSError as e:
    print("blocked", e)
