# hostile: cross-run — a TCP listener and an abstract unix listener put into an unreachable SCM_RIGHTS cycle
# outlive every process of the run (until the kernel's unix garbage collector runs); the next run must still
# be able to bind the same port and name
# expect: {"twice": true, "ok": true, "stdout_has": ["bound"]}
import socket
try:
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 47321))
    tcp.listen(8)
    unix = socket.socket(socket.AF_UNIX)
    unix.bind("\0budgetflow-hostile-cycle")
    unix.listen(8)
except OSError as e:
    print("ESCAPED: an earlier run's listener is still bound:", e)
    raise SystemExit(1)
a, b = socket.socketpair()
# b's queue holds a message carrying a, b and both listeners: once our descriptors are closed, only the cycle
# keeps them alive
socket.send_fds(a, [b"x"], [a.fileno(), b.fileno(), tcp.fileno(), unix.fileno()])
for s in (a, b, tcp, unix):
    s.close()
print("bound")
