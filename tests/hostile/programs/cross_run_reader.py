# hostile: other runs — look for a concurrent run's secret file anywhere writable
# expect: {}
import os
needle = "@@SECRET_REV@@"[::-1].encode()  # reversed so this source does not match itself
for top in ("/tmp", "/dev/shm", "/var/tmp", "."):
    for root, dirs, files in os.walk(top):
        for f in files:
            try:
                data = open(os.path.join(root, f), "rb").read(4096)
                if needle in data:
                    print("ESCAPED", os.path.join(root, f))
            except OSError:
                pass
print("searched")
