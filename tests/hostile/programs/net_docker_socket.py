# hostile: network — reach a Docker engine socket to start a privileged container
# expect: {"stdout_has": ["blocked"]}
import socket
ok = False
for path in ("/run/budgetflow-docker.sock", "/var/run/docker.sock", "/run/docker.sock"):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        ok = True
    except OSError:
        pass
print("ESCAPED" if ok else "blocked")
