# hostile: network — connect to a listener the test opened on the host's 127.0.0.1
# expect: {"stdout_has": ["blocked"]}
import socket
s = socket.socket()
s.settimeout(2)
try:
    s.connect(("127.0.0.1", @@PORT@@))
    s.sendall(b"@@SECRET@@")
    print("ESCAPED")
except OSError as e:
    print("blocked", e)
