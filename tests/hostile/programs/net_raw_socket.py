# hostile: network — raw IP socket (needs CAP_NET_RAW)
# expect: {"stdout_has": ["blocked"]}
import socket
try:
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    print("ESCAPED")
except OSError as e:
    print("blocked", e)
