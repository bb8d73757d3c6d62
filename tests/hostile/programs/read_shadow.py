# hostile: secrets — /etc/shadow
# expect: {"stdout_has": ["denied"]}
try:
    print("ESCAPED", open("/etc/shadow").read()[:30])
except OSError as e:
    print("denied", e)
