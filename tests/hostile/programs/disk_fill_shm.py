# hostile: disk fill — /dev/shm (shared-memory tmpfs)
# expect: {"killed_by": ["disk", "file_size", "memory"]}
with open("/dev/shm/fill", "wb") as f:
    while True:
        f.write(b"x" * 65536)
