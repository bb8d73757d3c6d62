# hostile: disk fill — many 1 MiB files
# expect: {"killed_by": ["disk"]}
i = 0
while True:
    with open(f"f{i}", "wb") as f:
        f.write(b"x" * (1 << 20))
    i += 1
