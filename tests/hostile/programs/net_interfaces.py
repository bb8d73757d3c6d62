# hostile: network — look for any interface besides loopback
# expect: {"stdout_has": ["only-lo"]}
import socket
try:
    names = [n for _, n in socket.if_nameindex()]
except OSError:  # netlink is blocked by seccomp in the process backend; /proc shows our namespace
    names = [line.split(":")[0].strip() for line in open("/proc/net/dev").readlines()[2:]]
print("only-lo" if names == ["lo"] else f"ESCAPED {names}")
