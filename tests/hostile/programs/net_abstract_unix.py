# hostile: network — abstract unix socket the test listens on (abstract names are per network namespace)
# expect: {"stdout_has": ["blocked"]}
import socket
s = socket.socket(socket.AF_UNIX)
try:
    s.connect("\0@@ABSTRACT@@")
    print("ESCAPED")
except OSError as e:
    print("blocked", e)
