# hostile: secrets — look for the host's home, project and runtime directories
# expect: {}
import os
for d in ("/root/.cache", "/root/.pyenv", "/work", "/home", "/run/budgetflow-docker.sock", "/var/lib/docker",
          "/var/lib/postgresql", os.path.dirname("@@SECRET_PATH@@")):
    try:
        names = os.listdir(d) if os.path.isdir(d) else [d] if os.path.exists(d) else []
        print(d, "ESCAPED" if names else "empty", names[:5])
    except OSError as e:
        print("denied", d, e.errno)
