# hostile: fork bomb — thread bomb (threads count against the process limit)
# expect: {"killed_by": ["processes", "timeout", "cpu", "memory"]}
import threading, time
threads = []
while True:
    t = threading.Thread(target=time.sleep, args=(60,))
    t.start()
    threads.append(t)
