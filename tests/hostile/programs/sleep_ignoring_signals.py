# hostile: timeout — ignore every catchable signal, then sleep
# expect: {"killed_by": ["timeout"]}
import signal, time
for s in signal.valid_signals():
    try:
        signal.signal(s, signal.SIG_IGN)
    except (OSError, ValueError):
        pass
time.sleep(3600)
