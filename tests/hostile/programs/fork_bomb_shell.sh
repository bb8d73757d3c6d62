# hostile: fork bomb — the classic shell bomb, as a shell script
# expect: {"killed_by": ["processes", "timeout", "cpu", "memory", "output"], "shell": true}
bomb() { bomb | bomb & }
bomb
sleep 30
