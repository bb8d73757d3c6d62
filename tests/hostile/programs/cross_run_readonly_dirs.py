# hostile: cross-run — directories made read-only (0500, with a file inside) in the work dir, /tmp and /dev/shm
# so a wipe running as the program's own unprivileged user cannot remove them
# expect: {"twice": true, "ok": true, "stdout_has": ["planted"]}
import os
traps = ("/tmp/bf-trap-tmp", "/dev/shm/bf-trap-shm", os.path.join(os.getcwd(), "bf-trap-work"))
left = [t for t in traps if os.path.exists(t)]
if left:
    print("ESCAPED: an earlier run's directories are here:", left)
for d in traps:
    if not os.path.exists(d):
        os.makedirs(d + "/inner")
        open(d + "/inner/file", "w").write("x")
        os.chmod(d + "/inner", 0o500)
        os.chmod(d, 0o500)
print("planted")
