# hostile: cpu — spin forever
# expect: {"killed_by": ["cpu", "timeout"]}
while True:
    pass
