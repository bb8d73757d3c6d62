# hostile: cross-run — the main thread leaves with the raw exit syscall (not exit_group) while another thread
# lives: a zombie leader whose live thread a /proc walk does not see; the run must still stop at its wall clock,
# and the next run on the same worker must get its own result (not this one's late status)
# expect: {"twice": true, "limits": {"timeout_s": 1.5}, "killed_by": ["timeout"], "stdout_has": ["main thread exits"]}
import ctypes, threading, time
threading.Thread(target=time.sleep, args=(8,)).start()  # outlives the timeout and the old 5 s wait
print("main thread exits", flush=True)
ctypes.CDLL(None).syscall(60, 0)  # SYS_exit: this thread only
