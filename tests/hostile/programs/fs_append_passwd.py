# hostile: filesystem — add a root account to /etc/passwd
# expect: {"stdout_has": ["denied"]}
try:
    with open("/etc/passwd", "a") as f:
        f.write("evil::0:0::/:/bin/sh\n")
    print("ESCAPED")
except OSError as e:
    print("denied", e)
