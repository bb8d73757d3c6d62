# hostile: network — UDP datagrams to the test's socket on 127.0.0.1 (the test checks nothing arrived)
# expect: {}
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(20):
    try:
        s.sendto(b"@@SECRET@@", ("127.0.0.1", @@UDPPORT@@))
    except OSError as e:
        print("blocked", e)
        break
print("sent")
