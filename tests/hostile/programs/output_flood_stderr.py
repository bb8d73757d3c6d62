# hostile: endless output — stderr, unbuffered
# expect: {"killed_by": ["output"]}
import os
while True:
    os.write(2, b"e" * 4096)
