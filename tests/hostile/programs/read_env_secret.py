# hostile: secrets — the parent's environment variables
# expect: {}
import os
print(dict(os.environ))
