# hostile: disk fill — one ever-growing file
# expect: {"killed_by": ["file_size", "disk"]}
with open("fill", "wb") as f:
    while True:
        f.write(b"x" * 65536)
