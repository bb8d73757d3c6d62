# hostile: endless output — a background child floods after the parent exits
# expect: {}
import os
if os.fork() == 0:
    while True:
        os.write(1, b"z" * 4096)
print("parent leaves")
