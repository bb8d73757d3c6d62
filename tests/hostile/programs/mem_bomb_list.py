# hostile: memory bomb — grow a list of 1 MiB blocks
# expect: {"killed_by": ["memory"]}
x = []
while True:
    x.append(bytearray(1 << 20))
