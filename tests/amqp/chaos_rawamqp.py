"""Raw AMQP 0-9-1 bytes for the robustness tests: a client that misbehaves
on purpose (pipelines thousands of publishes and never reads), which pika
cannot be made to do. Only the methods those tests send.
"""
import socket
import struct

FRAME_METHOD, FRAME_HEADER, FRAME_BODY = 1, 2, 3
FRAME_END = b"\xce"


def _shortstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("B", len(b)) + b


def _longstr(b):
    return struct.pack(">I", len(b)) + b


def frame(ftype, channel, payload):
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + FRAME_END


def method(channel, class_id, method_id, args=b""):
    return frame(FRAME_METHOD, channel, struct.pack(">HH", class_id, method_id) + args)


def start_ok(user="guest", password="guest"):
    resp = b"\0" + user.encode() + b"\0" + password.encode()
    args = struct.pack(">I", 0) + _shortstr("PLAIN") + _longstr(resp) + _shortstr("en_US")
    return method(0, 10, 11, args)


def tune_ok(channel_max=2047, frame_max=131072, heartbeat=0):
    return method(0, 10, 31, struct.pack(">HIH", channel_max, frame_max, heartbeat))


def connection_open(vhost="/"):
    return method(0, 10, 40, _shortstr(vhost) + _shortstr("") + b"\0")


def channel_open(ch):
    return method(ch, 20, 10, _shortstr(""))


def confirm_select(ch):
    return method(ch, 85, 10, b"\0")


def queue_declare(ch, queue, durable=False):
    flags = 0x02 if durable else 0
    return method(ch, 50, 10, struct.pack(">H", 0) + _shortstr(queue) +
                  struct.pack("B", flags) + struct.pack(">I", 0))


def basic_consume(ch, queue, tag, no_ack=True):
    flags = 0x02 if no_ack else 0
    return method(ch, 60, 20, struct.pack(">H", 0) + _shortstr(queue) + _shortstr(tag) +
                  struct.pack("B", flags) + struct.pack(">I", 0))


def basic_publish(ch, exchange, key, body, persistent=False):
    out = method(ch, 60, 40, struct.pack(">H", 0) + _shortstr(exchange) + _shortstr(key) + b"\0")
    if persistent:
        props = struct.pack(">H", 0x1000) + b"\x02"
    else:
        props = struct.pack(">H", 0)
    out += frame(FRAME_HEADER, ch, struct.pack(">HHQ", 60, 0, len(body)) + props)
    if body:
        out += frame(FRAME_BODY, ch, body)
    return out


def _read_frame(sock):
    head = b""
    while len(head) < 7:
        chunk = sock.recv(7 - len(head))
        if not chunk:
            return None
        head += chunk
    ftype, channel, size = struct.unpack(">BHI", head)
    rest = b""
    while len(rest) < size + 1:
        chunk = sock.recv(size + 1 - len(rest))
        if not chunk:
            return None
        rest += chunk
    return ftype, channel, rest[:size]


def _wait_method(sock, class_id, method_id):
    for _ in range(64):
        f = _read_frame(sock)
        if f is None:
            return False
        if f[0] == FRAME_METHOD and struct.unpack(">HH", f[2][:4]) == (class_id, method_id):
            return True
    return False


def login(port, heartbeat=0, timeout=5.0):
    """Connect and open the connection and channel 1; returns the socket or
    None."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(b"AMQP\x00\x00\x09\x01")
    if not _wait_method(s, 10, 10):
        s.close()
        return None
    s.sendall(start_ok())
    if not _wait_method(s, 10, 30):
        s.close()
        return None
    s.sendall(tune_ok(heartbeat=heartbeat) + connection_open())
    if not _wait_method(s, 10, 41):
        s.close()
        return None
    s.sendall(channel_open(1))
    if not _wait_method(s, 20, 11):
        s.close()
        return None
    return s
