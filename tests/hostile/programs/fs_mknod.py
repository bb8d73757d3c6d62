# hostile: filesystem — create a block device node for the host disk
# expect: {"stdout_has": ["denied"]}
import os, stat
try:
    os.mknod("disk", stat.S_IFBLK | 0o600, os.makedev(253, 0))
    print("ESCAPED")
except OSError as e:
    print("denied", e)
