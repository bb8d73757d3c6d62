# hostile: filesystem — symlink from the work dir to /etc/shadow and read through it
# expect: {"stdout_has": ["denied"]}
import os
os.symlink("/etc/shadow", "link")
try:
    print("ESCAPED", open("link").read()[:20])
except OSError as e:
    print("denied", e)
