# ordinary program: writes through /dev/stdout, /dev/stderr and reads /dev/stdin, as shell-minded code does
# expect: {"ok": true, "stdout_has": ["via /dev/stdout", "stdin empty"]}
import sys
with open("/dev/stdout", "w") as f:
    f.write("via /dev/stdout\n")
with open("/dev/stderr", "w") as f:
    f.write("via /dev/stderr\n")
print("stdin empty" if open("/dev/stdin").read() == "" else "stdin has data")
