# hostile: setuid tricks — any capability left in the effective/permitted/bounding sets?
# expect: {"stdout_has": ["no-caps"]}
caps = {}
for line in open("/proc/self/status"):
    if line.startswith(("CapEff", "CapPrm", "CapAmb")):
        k, v = line.split()
        caps[k] = int(v, 16)
print("no-caps" if not any(caps.values()) else f"ESCAPED {caps}")
