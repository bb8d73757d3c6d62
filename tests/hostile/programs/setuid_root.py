# hostile: setuid tricks — become root by setuid/setresuid/setgroups
# expect: {"stdout_has": ["uid-unchanged"]}
import os
for call in (lambda: os.setuid(0), lambda: os.setresuid(0, 0, 0), lambda: os.setgroups([0]), lambda: os.setgid(0)):
    try:
        call()
    except OSError as e:
        print("denied", e.errno)
print("uid-unchanged" if os.getuid() != 0 and os.geteuid() != 0 else "ESCAPED")
