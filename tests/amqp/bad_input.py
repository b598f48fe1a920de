"""Bad input is refused, not a crash: a wrong protocol header gets the
server's header back and the socket closed; garbage after a good header
closes the connection; the broker keeps serving afterwards."""
import socket
import sys

from common import check, connect, name, ok, port

P = port()
s = socket.create_connection(("127.0.0.1", P), timeout=5)
s.sendall(b"HTTP/1.1 GET /\r\n\r\n")
data = b""
try:
    while True:
        chunk = s.recv(64)
        if not chunk:
            break
        data += chunk
except socket.timeout:
    check(False, "server did not close after a bad header")
check(data == b"AMQP\x00\x00\x09\x01", "server answered %r" % data)
s.close()

s = socket.create_connection(("127.0.0.1", P), timeout=5)
s.sendall(b"AMQP\x00\x00\x09\x01" + b"\xff" * 64)
closed = False
try:
    for _ in range(100):
        if not s.recv(4096):
            closed = True
            break
except (socket.timeout, ConnectionResetError):
    closed = True
check(closed, "garbage frames did not close the connection")
s.close()

conn = connect(P)
ch = conn.channel()
q = name("after-bad")
ch.queue_declare(queue=q)
ch.queue_delete(queue=q)
conn.close()
ok("bad input refused")
