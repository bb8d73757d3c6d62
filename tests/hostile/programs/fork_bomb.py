# hostile: fork bomb — os.fork in a loop
# expect: {"killed_by": ["processes", "timeout", "cpu", "memory"]}
import os
while True:
    os.fork()
