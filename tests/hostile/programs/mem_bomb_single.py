# hostile: memory bomb — one huge string
# expect: {"killed_by": ["memory"]}
x = "a" * (8 * 10**9)
print(len(x))
