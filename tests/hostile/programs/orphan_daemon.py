# hostile: outliving — double-fork daemon that keeps running after the program exits
# expect: {"stdout_has": ["parent exits"]}
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(3600)
    os._exit(0)
print("parent exits")
