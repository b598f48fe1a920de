"""Conformance on raw bytes (what pika cannot send): AMQPLAIN login,
connection.update-secret, and the connection.close handshake: after the
broker sends connection.close it keeps reading (and discarding) until
close-ok, and after a close-ok it ends the TCP connection with FIN, never
with a reset that would destroy its last frames."""
import socket
import struct
import sys
import time

from common import check, ok, port


def frame(ftype, channel, payload):
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + b"\xce"


def method(channel, cls, mid, args=b""):
    return frame(1, channel, struct.pack(">HH", cls, mid) + args)


def shortstr(s):
    return struct.pack(">B", len(s)) + s


def longstr(s):
    return struct.pack(">I", len(s)) + s


class Conn:
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", port()), timeout=10)
        self.buf = b""

    def read_frame(self):
        while True:
            if len(self.buf) >= 7:
                ftype, ch, size = struct.unpack(">BHI", self.buf[:7])
                if len(self.buf) >= 8 + size:
                    payload = self.buf[7:7 + size]
                    check(self.buf[7 + size] == 0xCE, "bad frame end")
                    self.buf = self.buf[8 + size:]
                    return ftype, ch, payload
            data = self.s.recv(65536)
            check(data, "connection ended before a frame arrived")
            self.buf += data

    def expect(self, cls, mid):
        while True:
            ftype, ch, p = self.read_frame()
            if ftype == 8:
                continue  # heartbeat
            got = struct.unpack(">HH", p[:4])
            check(ftype == 1 and got == (cls, mid),
                  "expected %d.%d, got type %d %r" % (cls, mid, ftype, got))
            return ch, p[4:]


def login(mechanism=b"AMQPLAIN"):
    c = Conn()
    c.s.sendall(b"AMQP\x00\x00\x09\x01")
    _, start = c.expect(10, 10)
    check(b"AMQPLAIN" in start and b"PLAIN" in start, "mechanisms offered: %r" % start[-40:])
    if mechanism == b"AMQPLAIN":
        resp = (shortstr(b"LOGIN") + b"S" + longstr(b"guest") +
                shortstr(b"PASSWORD") + b"S" + longstr(b"guest"))
    else:
        resp = b"\x00guest\x00guest"
    c.s.sendall(method(0, 10, 11, struct.pack(">I", 0) + shortstr(mechanism) +
                       longstr(resp) + shortstr(b"en_US")))
    _, tune = c.expect(10, 30)
    channel_max, frame_max, _ = struct.unpack(">HIH", tune[:8])
    c.s.sendall(method(0, 10, 31, struct.pack(">HIH", channel_max, frame_max, 0)))
    c.s.sendall(method(0, 10, 40, shortstr(b"/") + shortstr(b"") + b"\x00"))
    c.expect(10, 41)
    return c


def expect_fin(c, what):
    """The broker closes with FIN after its last frame: recv gives b""."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            data = c.s.recv(65536)
        except ConnectionResetError:
            check(False, "%s: connection reset instead of a clean close" % what)
        if not data:
            return
    check(False, "%s: the broker did not close" % what)


# AMQPLAIN login, then update-secret -> update-secret-ok
c = login(b"AMQPLAIN")
c.s.sendall(method(0, 10, 70, longstr(b"new-token") + shortstr(b"rotation")))
c.expect(10, 71)
# a connection error: channel 5 was never opened -> connection.close 504
c.s.sendall(method(5, 50, 10, struct.pack(">H", 0) + shortstr(b"q") + b"\x00" +
                   struct.pack(">I", 0)))
_, close = c.expect(10, 50)
code = struct.unpack(">H", close[:2])[0]
check(code == 504, "connection.close code %d, want 504" % code)
# it keeps reading until close-ok: what we send meanwhile is discarded, and
# the socket stays open for the close-ok
c.s.sendall(method(1, 20, 10, shortstr(b"")) * 50)
time.sleep(0.2)
c.s.sendall(method(0, 10, 51))
expect_fin(c, "after close-ok")

# a client close with more bytes behind it: close-ok must still arrive
c = login(b"PLAIN")
c.s.sendall(method(0, 10, 50, struct.pack(">H", 200) + shortstr(b"bye") +
                   struct.pack(">HH", 0, 0)) + frame(8, 0, b"") * 2000)
c.expect(10, 51)
expect_fin(c, "after the client's close")
ok("raw: AMQPLAIN, update-secret, close handshake")
