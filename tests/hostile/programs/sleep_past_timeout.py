# hostile: timeout — sleep far past the wall clock
# expect: {"killed_by": ["timeout"]}
import time
time.sleep(3600)
