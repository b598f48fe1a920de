"""A minimal wire-protocol client (broker/wire.h) for the robustness tests.

Only what the tests need: the frame header, CRC32C, HEARTBEAT, the AUTH
preamble of the client port (docs/broker.md) and a frame reader. Not a
tutorial program (the chaos_ prefix keeps test_cli_amqp from running it).
"""
import os
import re
import socket
import struct

WIRE_MAGIC = b"CL"


def _wire_version():
    """WIRE_VERSION as broker/wire.h defines it, so this client never drifts
    from the codec it tests (a stale copy made every frame a bad version)."""
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "broker", "wire.h")) as f:
        m = re.search(r"#define WIRE_VERSION (\d+)u", f.read())
    assert m, "WIRE_VERSION not found in broker/wire.h"
    return int(m.group(1))


WIRE_VERSION = _wire_version()
WIRE_HEADER_SIZE = 12
MSG_HEARTBEAT = 25
AUTH_MAGIC = b"CHLA"


def _crc_table():
    poly = 0x82F63B78
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def frame(msg_type, body):
    head = WIRE_MAGIC + struct.pack("<BBI", WIRE_VERSION, msg_type, len(body))
    return head + struct.pack("<I", crc32c(head + body)) + body


def heartbeat(session_id, timestamp_ns=0, owner=0):
    return frame(MSG_HEARTBEAT, struct.pack("<QQQ", session_id, timestamp_ns, owner))


def auth(token):
    """The client port's preamble: "CHLA", u32 length (LE), the token."""
    t = token.encode() if isinstance(token, str) else token
    return AUTH_MAGIC + struct.pack("<I", len(t)) + t


def read_frame(sock):
    """One frame as (type, body), or None on EOF."""
    head = _read_exact(sock, WIRE_HEADER_SIZE)
    if head is None:
        return None
    _, _, msg_type, length = struct.unpack("<2sBBI", head[:8])
    body = _read_exact(sock, length)
    if body is None:
        return None
    return msg_type, body


def _read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def open_session(port, token=None, timeout=5.0):
    """Connect, authenticate if `token`, open a session: (socket, epoch)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if token is not None:
        s.sendall(auth(token))
    s.sendall(heartbeat(0))
    f = read_frame(s)
    if f is None or f[0] != MSG_HEARTBEAT:
        s.close()
        return None, 0
    return s, struct.unpack("<Q", f[1][:8])[0]
