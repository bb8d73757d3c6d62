# hostile: secrets — read a world-readable secret file the test wrote on the host
# expect: {}
for path in ("@@SECRET_PATH@@", "/root/.bash_history", "/root/.cache", "/work"):
    try:
        with open(path) as f:
            print(f.read())
    except OSError as e:
        print("denied", path, e.errno)
