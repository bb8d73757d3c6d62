# hostile: memory bomb — anonymous mmap, touching every page
# expect: {"killed_by": ["memory"]}
import mmap
m = mmap.mmap(-1, 2 << 30)
for i in range(0, len(m), 4096):
    m[i] = 1
