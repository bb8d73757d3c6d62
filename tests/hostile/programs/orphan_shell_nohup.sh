# hostile: outliving — nohup'd background job from a shell
# expect: {"shell": true, "stdout_has": ["shell exits"]}
nohup sleep 3600 >/dev/null 2>&1 &
echo "shell exits"
