# hostile: endless output — stdout
# expect: {"killed_by": ["output"]}
while True:
    print("y" * 1000)
