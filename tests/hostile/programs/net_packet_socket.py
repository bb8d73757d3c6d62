# hostile: network — AF_PACKET link-layer socket
# expect: {"stdout_has": ["blocked"]}
import socket
try:
    socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    print("ESCAPED")
except OSError as e:
    print("blocked", e)
