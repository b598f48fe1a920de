#!/usr/bin/python3
"""One real `chaoslab broker` process against clients that misbehave.

usage: chaos_robust.py CHAOSLAB_BINARY [CHECK ...]

Starts a one-node broker (wire client port with a token, AMQP port, short
timeouts) on free 127.0.0.1 ports in a temp dir and runs each check (all by
default). After every check the node must still be alive (not killed by a
signal) and serve a pika publish with confirms. Prints the figures it
measured ("# name: value"). Exit 0 = every check held; 1 = one failed.
Bounded: every socket has a timeout and the whole run a deadline.
"""
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chaos_rawamqp as raw  # noqa: E402
import chaos_wire as wire  # noqa: E402

import pika  # noqa: E402

DEADLINE_S = 240.0
TOKEN = "s3cret-token-for-tests"
HANDSHAKE_MS = 1500
IDLE_MS = 4000
FRAME_MS = 2000
START = time.monotonic()
# Under ASan (CTest sets this for the sanitizer build) freed memory sits in
# quarantine and malloc_trim does not apply: RSS checks are skipped there.
RSS_CHECKS = not os.environ.get("CHAOSLAB_SANITIZED")


def fail(what):
    print("FAIL: " + what, flush=True)
    sys.exit(1)


def figure(name, value):
    print("# %s: %s" % (name, value), flush=True)


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class Node:
    def __init__(self, binary, tmp):
        self.peer, self.client, self.amqp = free_ports(3)
        self.dir = os.path.join(tmp, "n0")
        tok = os.path.join(tmp, "token")
        with open(tok, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(tok, 0o600)
        self.log = open(os.path.join(tmp, "node.log"), "w")
        wrap = os.environ.get("ROBUST_WRAP", "").split()
        self.proc = subprocess.Popen(
            wrap + [binary, "broker", "--id", "0", "--peers", "127.0.0.1:%d" % self.peer,
             "--client", "127.0.0.1:%d" % self.client, "--client-token-file", tok,
             "--amqp", "127.0.0.1:%d" % self.amqp, "--data-dir", self.dir,
             "--handshake-timeout", str(HANDSHAKE_MS), "--idle-timeout", str(IDLE_MS),
             "--frame-timeout", str(FRAME_MS)],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.serves():
                return
            time.sleep(0.2)
        fail("the node never served a publish")

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    def alive(self, what):
        rc = self.proc.poll()
        if rc is not None:
            fail("%s: the node exited (%s)" % (
                what, "signal %d" % -rc if rc < 0 else "code %d" % rc))

    def serves(self, queue="robust-probe"):
        try:
            conn = pika.BlockingConnection(pika.ConnectionParameters(
                "127.0.0.1", self.amqp, socket_timeout=3, blocked_connection_timeout=5,
                connection_attempts=1))
            ch = conn.channel()
            ch.confirm_delivery()
            ch.queue_declare(queue=queue)
            ch.basic_publish("", queue, b"probe")
            conn.close()
            return True
        except Exception:  # noqa: BLE001 - any failure means "not serving"
            return False

    def check_serving(self, what):
        self.alive(what)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.serves():
                return
            self.alive(what)
            time.sleep(0.3)
        fail("%s: the node no longer serves" % what)

    def stop(self):
        """SIGTERM; returns the exit status (0 = a clean stop; under ASan a
        leak or error found at exit makes it non-zero)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


# ---- checks ---------------------------------------------------------------


def check_wire_flood(n):
    """Pipeline 200,000 wire heartbeats, close without reading a reply."""
    s, epoch = wire.open_session(n.client, TOKEN)
    if s is None:
        fail("wire: no session with the right token")
    burst = wire.heartbeat(epoch) * 200000
    s.settimeout(10)
    try:
        s.sendall(burst)
    except OSError:
        pass  # the node may close us (over our output limit): fine
    s.close()
    time.sleep(0.5)
    n.check_serving("wire flood")


def check_amqp_flood(n):
    """20,000 pipelined basic.publish with confirms. Twice: closed without
    reading a byte (the node's next write meets a reset), and closed after
    reading some confirms, with the receive buffer empty (a clean FIN: the
    node's write after it draws a reset, the one after that EPIPE, which
    was SIGPIPE, death, before)."""
    for mode in ("unread", "half-read"):
        s = raw.login(n.amqp)
        if s is None:
            fail("amqp: raw login failed")
        q = "flood-%d" % os.getpid()
        burst = raw.confirm_select(1) + raw.queue_declare(1, q)
        burst += raw.basic_publish(1, "", q, b"x" * 64) * 20000
        s.settimeout(20)
        if mode == "unread":
            try:
                s.sendall(burst)
            except OSError:
                pass
        else:
            def send():
                try:
                    s.sendall(burst)
                except OSError:
                    pass
            t = threading.Thread(target=send, daemon=True)
            t.start()
            got = 0
            try:
                while got < 32 * 1024:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += len(chunk)
            except OSError:
                pass
        s.close()
        time.sleep(1.0)
        n.check_serving("amqp flood (%s)" % mode)


def check_stalled_consumer(n):
    """A no_ack consumer that never reads: the node stops pushing to it (the
    messages stay in the queue, not in per-connection buffers) and the node
    keeps serving."""
    q = "stall-%d" % os.getpid()
    s = raw.login(n.amqp)
    if s is None:
        fail("stalled consumer: login failed")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(raw.queue_declare(1, q) + raw.basic_consume(1, q, "stall", no_ack=True))
    time.sleep(0.5)
    before = n.rss_kb()
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", n.amqp,
                                                             socket_timeout=5))
    ch = conn.channel()
    ch.confirm_delivery()
    body = b"y" * 65536
    published = 0
    t_end = time.monotonic() + 20
    while time.monotonic() < t_end and published < 2000:  # 2000 x 64 KiB = 125 MiB
        ch.basic_publish("", q, body)
        published += 1
    time.sleep(1.0)
    ready = ch.queue_declare(queue=q, passive=True).method.message_count
    s.close()
    ch.queue_delete(queue=q)  # so the later checks measure connections, not messages
    conn.close()
    peak = n.rss_kb()
    gone = published - ready
    figure("stalled consumer: 64 KiB messages published / still queued", "%d / %d" % (
        published, ready))
    figure("stalled consumer: RSS before/after (KiB)", "%d / %d" % (before, peak))
    n.alive("stalled consumer")
    # In flight at most: 128 unacked on the wire + the client's 4 MiB output
    # + socket buffers. Without flow control the node pushed everything.
    if gone > 400:
        fail("stalled consumer: %d messages left the queue toward a client that reads "
             "nothing" % gone)
    n.check_serving("stalled consumer")


def check_idle_burst(n):
    """300 idle TCP connections (no login) time out; memory is returned."""
    before = n.rss_kb()
    socks = []
    for _ in range(300):
        try:
            socks.append(socket.create_connection(("127.0.0.1", n.amqp), timeout=2))
        except OSError:
            break
    time.sleep(0.5)
    held = n.rss_kb()
    t0 = time.monotonic()
    closed = 0
    for s in socks:
        s.settimeout(max(0.1, HANDSHAKE_MS / 1000.0 + 3 - (time.monotonic() - t0)))
        try:
            if s.recv(64) == b"":
                closed += 1
        except ConnectionResetError:
            closed += 1
        except OSError:
            pass
    figure("idle burst: connections / closed by the node", "%d / %d" % (len(socks), closed))
    for s in socks:
        s.close()
    time.sleep(1.0)
    after = n.rss_kb()
    figure("idle burst: RSS before / held / after (KiB)", "%d / %d / %d" % (before, held, after))
    if closed < len(socks):
        fail("idle burst: %d of %d idle connections were not closed" % (
            len(socks) - closed, len(socks)))
    if RSS_CHECKS and after > before + 16 * 1024:
        fail("idle burst: RSS stayed at %d KiB (before %d)" % (after, before))
    n.check_serving("idle burst")


def check_logged_in_burst(n):
    """300 logged-in AMQP connections: the port takes its cap (256 by
    default) and refuses the rest at once; memory is returned after."""
    before = n.rss_kb()
    socks, refused = [], 0
    for _ in range(300):
        try:
            s = raw.login(n.amqp)
        except OSError:
            s = None
        if s is None:
            refused += 1
        else:
            socks.append(s)
    held = n.rss_kb()
    for s in socks:
        s.close()
    time.sleep(1.5)
    after = n.rss_kb()
    figure("logged-in burst: logged in / refused", "%d / %d" % (len(socks), refused))
    figure("logged-in burst: RSS before / held / after (KiB)", "%d / %d / %d" % (before, held, after))
    if len(socks) != 256 or refused != 44:
        fail("logged-in burst: want 256 served and 44 refused (the default cap)")
    if RSS_CHECKS and after > before + 16 * 1024:
        fail("logged-in burst: RSS stayed at %d KiB (before %d)" % (after, before))
    n.check_serving("logged-in burst")


def check_half_frames(n):
    """10 half-sent 4 MiB wire frames are dropped after the frame timeout."""
    before = n.rss_kb()
    socks = []
    half = wire.heartbeat(0)[:8]
    head = wire.WIRE_MAGIC + struct.pack("<BBI", wire.WIRE_VERSION, 1, 4 * 1024 * 1024 - 12)
    for _ in range(10):
        s, _ = wire.open_session(n.client, TOKEN)
        if s is None:
            fail("half frames: no session")
        s.sendall(head + b"\0" * 4 + b"z" * (2 * 1024 * 1024))
        socks.append(s)
    del half
    time.sleep(0.5)
    held = n.rss_kb()
    dropped = 0
    for s in socks:
        s.settimeout(IDLE_MS / 1000.0 + 4)
        try:
            while s.recv(65536):
                pass
            dropped += 1
        except OSError:
            dropped += 1 if isinstance(sys.exc_info()[1], ConnectionResetError) else 0
        s.close()
    time.sleep(0.5)
    after = n.rss_kb()
    figure("half frames: RSS before / held / after (KiB)", "%d / %d / %d" % (before, held, after))
    if dropped < len(socks):
        fail("half frames: %d connections kept" % (len(socks) - dropped))
    if RSS_CHECKS and after > before + 16 * 1024:
        fail("half frames: RSS stayed at %d KiB (before %d)" % (after, before))
    n.check_serving("half frames")


def check_wire_auth(n):
    """No token, a wrong token: refused (closed, no reply); the right one works."""
    for label, token in (("no token", None), ("wrong token", "not-the-token")):
        s = socket.create_connection(("127.0.0.1", n.client), timeout=5)
        if token is not None:
            s.sendall(wire.auth(token))
        try:
            s.sendall(wire.heartbeat(0))
            got = wire.read_frame(s)
        except OSError:
            got = None
        s.close()
        if got is not None:
            fail("wire auth: %s was served" % label)
    s, epoch = wire.open_session(n.client, TOKEN)
    if s is None or epoch == 0:
        fail("wire auth: the right token was refused")
    s.close()


def check_idle_after_login(n):
    """A logged-in AMQP connection with heartbeats off that goes silent is
    closed after the idle timeout; a wire session too."""
    s = raw.login(n.amqp, heartbeat=0)
    w, _ = wire.open_session(n.client, TOKEN)
    t0 = time.monotonic()
    s.settimeout(IDLE_MS / 1000.0 + 5)
    w.settimeout(IDLE_MS / 1000.0 + 5)
    for label, sock in (("amqp", s), ("wire", w)):
        try:
            while sock.recv(65536):
                pass
        except socket.timeout:
            fail("idle after login: the %s connection stayed open" % label)
        except OSError:
            pass
        figure("idle after login: %s closed after (s)" % label, "%.1f" % (time.monotonic() - t0))
        sock.close()


CHECKS = {
    "wire_auth": check_wire_auth,
    "wire_flood": check_wire_flood,
    "amqp_flood": check_amqp_flood,
    "stalled_consumer": check_stalled_consumer,
    "idle_burst": check_idle_burst,
    "logged_in_burst": check_logged_in_burst,
    "half_frames": check_half_frames,
    "idle_after_login": check_idle_after_login,
}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    names = sys.argv[2:] or list(CHECKS)
    signal.signal(signal.SIGALRM, lambda *_: fail("deadline of %ds passed" % DEADLINE_S))
    signal.alarm(int(DEADLINE_S))
    with tempfile.TemporaryDirectory(prefix="chaoslab-robust-") as tmp:
        n = Node(sys.argv[1], tmp)
        rc = None
        try:
            figure("RSS at start (KiB)", n.rss_kb())
            for name in names:
                t0 = time.monotonic()
                CHECKS[name](n)
                print("ok %s (%.1fs)" % (name, time.monotonic() - t0), flush=True)
        finally:
            rc = n.stop()
            if os.environ.get("ROBUST_SHOW_LOG") or rc != 0:
                print(open(os.path.join(tmp, "node.log")).read()[-4000:])
        if rc != 0:
            fail("the node did not stop cleanly on SIGTERM (exit %s)" % rc)
    print("all checks held (%.0fs)" % (time.monotonic() - START))


if __name__ == "__main__":
    main()
