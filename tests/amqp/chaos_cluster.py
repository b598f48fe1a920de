#!/usr/bin/python3
"""A real 3-process cluster under faults, with pika clients.

usage: chaos_cluster.py CHAOSLAB_BINARY [CHECK ...]

Starts three `chaoslab broker` processes on free 127.0.0.1 ports (a shared
wire-port token, --client-peers so followers forward to the leader) in a
temp dir, then runs the checks (all by default, in order):

  follower_close  publishes WITHOUT confirms through each follower's AMQP
                  port and closes at once: every message must be stored.
  pause_failover  a publisher with confirms on a follower; the leader gets
                  SIGSTOP: the first confirm after the pause must come
                  within PAUSE_CONFIRM_MAX_S (the election, not a 10 s
                  request timeout); then SIGCONT.
  chaos           a publisher with confirms, a consumer that stops reading
                  (raw socket, manual acks, never acks), SIGSTOP/SIGCONT
                  pauses of the leader, kill -9 of a follower and of the
                  leader (each restarted on its data dir). At the end the
                  queue is drained: no confirmed message may be missing.

Throughout, no node may die of a signal we did not send (SIGPIPE, SIGSEGV,
...). Prints figures as "# name: value". Exit 0 = every check held.
Bounded: a global deadline (SIGALRM), timeouts on every socket.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chaos_rawamqp as raw  # noqa: E402

import pika  # noqa: E402

DEADLINE_S = 200.0
PAUSE_CONFIRM_MAX_S = 4.0
TOKEN = "chaos-cluster-token"
START = time.monotonic()


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


class Cluster:
    def __init__(self, binary, tmp, n=3):
        self.binary, self.tmp, self.n = binary, tmp, n
        ports = free_ports(3 * n)
        self.peer = ports[0:n]
        self.client = ports[n:2 * n]
        self.amqp = ports[2 * n:3 * n]
        self.token_file = os.path.join(tmp, "token")
        with open(self.token_file, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(self.token_file, 0o600)
        self.procs = [None] * n
        self.logs = [os.path.join(tmp, "node-%d.log" % i) for i in range(n)]
        self.killed = set()  # pids we SIGKILLed: their death is expected
        self.paused = set()
        for i in range(n):
            self.start(i)

    def start(self, i):
        peers = ",".join("127.0.0.1:%d" % p for p in self.peer)
        clients = ",".join("127.0.0.1:%d" % p for p in self.client)
        log = open(self.logs[i], "a")
        self.procs[i] = subprocess.Popen(
            [self.binary, "broker", "--id", str(i), "--peers", peers,
             "--client", "127.0.0.1:%d" % self.client[i], "--client-peers", clients,
             "--client-token-file", self.token_file,
             "--amqp", "127.0.0.1:%d" % self.amqp[i],
             "--data-dir", os.path.join(self.tmp, "node-%d" % i)],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def check_alive(self, what):
        for i, p in enumerate(self.procs):
            rc = p.poll()
            if rc is None or p.pid in self.killed:
                continue
            fail("%s: node %d exited by itself (%s)" % (
                what, i, "signal %d" % -rc if rc < 0 else "code %d" % rc))

    def leader(self):
        """The node whose log last claimed leadership in the highest term."""
        best, best_term = None, -1
        for i in range(self.n):
            if self.procs[i].poll() is not None or i in self.paused:
                continue
            with open(self.logs[i], errors="replace") as f:
                text = f.read()
            for m in re.finditer(r"this node is the leader \(term (\d+)\)", text):
                if int(m.group(1)) > best_term:
                    best, best_term = i, int(m.group(1))
            for m in re.finditer(r"leader is node (\d+) \(term (\d+)\)", text):
                if int(m.group(2)) > best_term:
                    best, best_term = int(m.group(1)), int(m.group(2))
        return best

    def wait_leader(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ld = self.leader()
            if ld is not None and self.procs[ld].poll() is None and ld not in self.paused:
                return ld
            time.sleep(0.2)
        fail("no leader within %.0fs" % timeout)

    def pause(self, i):
        self.paused.add(i)
        os.kill(self.procs[i].pid, signal.SIGSTOP)

    def resume(self, i):
        os.kill(self.procs[i].pid, signal.SIGCONT)
        self.paused.discard(i)

    def kill9(self, i):
        self.killed.add(self.procs[i].pid)
        self.procs[i].kill()
        self.procs[i].wait(10)

    def stop_all(self):
        for i in list(self.paused):
            self.resume(i)
        bad = []
        for i, p in enumerate(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for i, p in enumerate(self.procs):
            try:
                rc = p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = p.wait()
                bad.append("node %d did not stop on SIGTERM" % i)
            if rc != 0 and p.pid not in self.killed:
                bad.append("node %d did not stop cleanly (%s)" % (
                    i, "signal %d" % -rc if rc < 0 else "exit %d" % rc))
        return bad


def connect(port, timeout=5):
    return pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", port, socket_timeout=timeout, blocked_connection_timeout=30,
        connection_attempts=1, heartbeat=30))


def drain(cl, queue, expect_max, quiet_s=3.0, limit_s=40.0):
    """Every body left in `queue` (auto-ack gets through any live node)."""
    got = []
    deadline = time.monotonic() + limit_s
    last = time.monotonic()
    conn = None
    while time.monotonic() < deadline and time.monotonic() - last < quiet_s:
        try:
            if conn is None:
                port = cl.amqp[cl.wait_leader()]
                conn = connect(port)
                ch = conn.channel()
            method, _, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                time.sleep(0.2)
                continue
            got.append(body.decode())
            last = time.monotonic()
            if len(got) > expect_max * 3:
                break
        except Exception:  # noqa: BLE001 - a node went away: reconnect
            conn = None
            time.sleep(0.3)
    try:
        if conn is not None:
            conn.close()
    except Exception:  # noqa: BLE001
        pass
    return got


# ---- checks --------------------------------------------------------------


def check_follower_close(cl):
    leader = cl.wait_leader()
    followers = [i for i in range(cl.n) if i != leader]
    q = "nc-%d" % os.getpid()
    c = connect(cl.amqp[leader])
    c.channel().queue_declare(queue=q, durable=True)
    c.close()
    sent = 0
    for f in followers:
        for k in range(5):
            conn = connect(cl.amqp[f])
            ch = conn.channel()
            for j in range(3):
                ch.basic_publish("", q, ("f%d-%d-%d" % (f, k, j)).encode(),
                                 pika.BasicProperties(delivery_mode=2))
                sent += 1
            conn.close()  # at once: no confirms, no wait
    time.sleep(1.0)
    got = drain(cl, q, sent)
    figure("follower close: sent without confirms / stored", "%d / %d" % (sent, len(set(got))))
    if len(set(got)) != sent:
        fail("follower close: %d of %d messages lost" % (sent - len(set(got)), sent))
    cl.check_alive("follower close")


class Publisher(threading.Thread):
    """Publishes persistent ids with confirms, one at a time, failing over
    between ports; confirmed ids and their times are recorded."""

    def __init__(self, cl, queue, first_port_index):
        super().__init__(daemon=True)
        self.cl, self.queue = cl, queue
        self.node = first_port_index
        self.confirmed = []      # (id, monotonic time)
        self.stop_flag = False
        self.reconnects = 0
        self.errors = 0
        self.move_to = None      # set: reconnect to this node next

    def run(self):
        conn = ch = None
        i = 0
        while not self.stop_flag:
            if self.move_to is not None:
                try:
                    if conn is not None:
                        conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = ch = None
                self.node, self.move_to = self.move_to, None
            if ch is None:
                try:
                    conn = connect(self.cl.amqp[self.node], timeout=3)
                    ch = conn.channel()
                    ch.confirm_delivery()
                    ch.queue_declare(queue=self.queue, durable=True)
                except Exception:  # noqa: BLE001 - next node
                    conn = ch = None
                    self.node = (self.node + 1) % self.cl.n
                    self.reconnects += 1
                    time.sleep(0.2)
                    continue
            msg = "p-%d" % i
            try:
                ch.basic_publish("", self.queue, msg.encode(),
                                 pika.BasicProperties(delivery_mode=2))
                self.confirmed.append((msg, time.monotonic()))
                i += 1
            except (pika.exceptions.NackError, pika.exceptions.UnroutableError):
                self.errors += 1  # outcome known: not stored; send again
            except Exception:  # noqa: BLE001 - outcome unknown: resend same id
                try:
                    conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = ch = None
                self.node = (self.node + 1) % self.cl.n
                self.reconnects += 1
        try:
            if conn is not None:
                conn.close()
        except Exception:  # noqa: BLE001
            pass

    def count(self):
        return len(self.confirmed)

    def avoid(self, node):
        """Publish through another node than `node` (which we will pause)."""
        if self.node == node:
            self.move_to = (node + 1) % self.cl.n
            deadline = time.monotonic() + 10
            while self.move_to is not None and time.monotonic() < deadline:
                time.sleep(0.02)
            return self.wait_progress(10, 15)
        return True

    def first_after(self, t):
        for _, ct in reversed(self.confirmed):
            if ct <= t:
                break
        after = [ct for _, ct in self.confirmed if ct > t]
        return min(after) if after else None

    def wait_progress(self, n_more, timeout):
        target = self.count() + n_more
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.count() < target:
            time.sleep(0.05)
        return self.count() >= target


def check_pause_failover(cl):
    leader = cl.wait_leader()
    follower = (leader + 1) % cl.n
    q = "pf-%d" % os.getpid()
    pub = Publisher(cl, q, follower)
    pub.start()
    if not pub.wait_progress(50, 15):
        fail("pause failover: the publisher never got going")
    worst = 0.0
    for rnd in range(2):
        leader = cl.wait_leader()
        if not pub.avoid(leader):  # the publisher's own node keeps running
            fail("pause failover: the publisher could not move off the leader")
        t0 = time.monotonic()
        cl.pause(leader)
        deadline = t0 + 15
        first = None
        while time.monotonic() < deadline:
            first = pub.first_after(t0 + 0.05)
            if first is not None:
                break
            time.sleep(0.05)
        time.sleep(max(0.0, 3.0 - (time.monotonic() - t0)))
        cl.resume(leader)
        took = (first - t0) if first is not None else float("inf")
        worst = max(worst, took)
        figure("pause failover round %d: leader %d paused, first confirm after (s)" % (rnd, leader),
               "%.2f" % took)
        cl.check_alive("pause failover")
        if not pub.wait_progress(20, 15):
            fail("pause failover: no progress after SIGCONT")
    pub.stop_flag = True
    pub.join(20)
    if worst > PAUSE_CONFIRM_MAX_S:
        fail("pause failover: a confirm took %.2fs after the pause (max %.1fs)" % (
            worst, PAUSE_CONFIRM_MAX_S))


def check_chaos(cl):
    leader = cl.wait_leader()
    q = "chaos-%d" % os.getpid()
    c = connect(cl.amqp[leader])
    c.channel().queue_declare(queue=q, durable=True)
    c.close()
    pub = Publisher(cl, q, (leader + 1) % cl.n)
    pub.start()
    # a consumer on another node that takes deliveries and never reads/acks
    stall_node = (leader + 2) % cl.n
    stalled = raw.login(cl.amqp[stall_node])
    if stalled is None:
        fail("chaos: stalled consumer could not log in")
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(raw.basic_consume(1, q, "stalled", no_ack=False))
    if not pub.wait_progress(100, 20):
        fail("chaos: the publisher never got going")
    steps = []

    def step(name, fn):
        t0 = time.monotonic()
        before = pub.count()
        fn()
        cl.check_alive("chaos " + name)
        ok = pub.wait_progress(20, 20)
        steps.append("%s: +%d confirms, %.1fs" % (name, pub.count() - before,
                                                    time.monotonic() - t0))
        if not ok:
            fail("chaos: no confirms after %s" % name)

    def pause_leader(seconds):
        def run():
            ld = cl.wait_leader()
            cl.pause(ld)
            time.sleep(seconds)
            cl.resume(ld)
        return run

    def kill_restart(which):
        def run():
            ld = cl.wait_leader()
            victim = ld if which == "leader" else (ld + 1) % cl.n
            cl.kill9(victim)
            time.sleep(2.0)
            cl.start(victim)
        return run

    step("pause leader 3s", pause_leader(3.0))
    step("pause leader 6s", pause_leader(6.0))
    step("kill -9 follower", kill_restart("follower"))
    step("pause leader 4s", pause_leader(4.0))
    step("kill -9 leader", kill_restart("leader"))
    pub.stop_flag = True
    pub.join(30)
    stalled.close()  # its unacked deliveries go back to the queue
    time.sleep(2.0)
    confirmed = {m for m, _ in pub.confirmed}
    got = drain(cl, q, len(confirmed))
    missing = confirmed - set(got)
    for s in steps:
        figure("chaos step", s)
    figure("chaos: confirmed / drained / distinct / missing", "%d / %d / %d / %d" % (
        len(confirmed), len(got), len(set(got)), len(missing)))
    figure("chaos: publisher reconnects / nacks", "%d / %d" % (pub.reconnects, pub.errors))
    if missing:
        fail("chaos: %d confirmed messages lost, e.g. %s" % (len(missing), sorted(missing)[:5]))
    cl.check_alive("chaos")


class Consumer(threading.Thread):
    """Consumes `queue` on one node with manual acks (prefetch 100), acking
    each delivery after `ack_delay_s`; records (time, body, redelivered)."""

    def __init__(self, port, queue, ack_delay_s, log, name):
        super().__init__(daemon=True)
        self.name_ = name
        self.port, self.queue, self.ack_delay_s, self.log = port, queue, ack_delay_s, log
        self.stop_flag = False

    def run(self):
        while not self.stop_flag:
            try:
                conn = connect(self.port, timeout=3)
                ch = conn.channel()
                ch.basic_qos(prefetch_count=128)
                for method, _, body in ch.consume(self.queue, inactivity_timeout=0.2):
                    if self.stop_flag:
                        break
                    if method is None:
                        continue
                    self.log.append((time.monotonic(), body.split(b" ")[0].decode(),
                                     bool(method.redelivered), self.name_))
                    if self.ack_delay_s:
                        time.sleep(self.ack_delay_s)
                    ch.basic_ack(method.delivery_tag)
                conn.close()
            except Exception:  # noqa: BLE001 - the node went away: again
                time.sleep(0.3)


def check_paused_follower(cl):
    """A consumer on a follower that gets SIGSTOPped past the session
    timeout: the leader requeues its unacked deliveries and another consumer
    gets them (flagged). After SIGCONT the follower's front end must not
    hand out what it had buffered from the dead session as a first
    delivery: no message may be delivered with redelivered=0 after it was
    already delivered once."""
    leader = cl.wait_leader()
    follower = (leader + 1) % cl.n
    q = "pfw-%d" % os.getpid()
    conn = connect(cl.amqp[leader])
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_declare(queue=q, durable=True)
    # The follower's consumer keeps up (acks at once), so when the pause
    # comes what the leader sent for it sits in the follower's buffers, not
    # in the client's: those deliveries are of a session that expires.
    total = 2000
    pad = b"." * (16 * 1024)
    for i in range(total):
        ch.basic_publish("", q, ("m-%d " % i).encode() + pad,
                         pika.BasicProperties(delivery_mode=2))
    conn.close()
    log = []
    slow = Consumer(cl.amqp[follower], q, 0.002, log, "follower")
    slow.start()
    time.sleep(1.5)
    fast = Consumer(cl.amqp[leader], q, 0.0, log, "leader")
    cl.pause(follower)
    time.sleep(0.3)
    fast.start()
    time.sleep(3.7)  # past the 2 s session timeout
    cl.resume(follower)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len({e[1] for e in log}) < total:
        time.sleep(0.2)
    time.sleep(1.0)
    slow.stop_flag = fast.stop_flag = True
    slow.join(10)
    fast.join(10)
    seen, bad = {}, []
    for t, body, redelivered, who in sorted(log):
        if body in seen and not redelivered:
            bad.append("%s (first to the %s, again to the %s)" % (body, seen[body], who))
        seen[body] = who
    figure("paused follower: deliveries / distinct / second deliveries unflagged",
           "%d / %d / %d" % (len(log), len(seen), len(bad)))
    cl.check_alive("paused follower")
    if len(seen) < total:
        fail("paused follower: %d of %d messages never delivered" % (total - len(seen), total))
    if bad:
        fail("paused follower: %d messages delivered again without the redelivered flag, "
             "e.g. %s" % (len(bad), bad[:5]))


CHECKS = {
    "follower_close": check_follower_close,
    "paused_follower": check_paused_follower,
    "pause_failover": check_pause_failover,
    "chaos": check_chaos,
}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    names = sys.argv[2:] or list(CHECKS)
    signal.signal(signal.SIGALRM, lambda *_: fail("deadline of %ds passed" % DEADLINE_S))
    signal.alarm(int(DEADLINE_S))
    with tempfile.TemporaryDirectory(prefix="chaoslab-chaos-") as tmp:
        cl = Cluster(sys.argv[1], tmp)
        try:
            cl.wait_leader(20)
            for name in names:
                t0 = time.monotonic()
                CHECKS[name](cl)
                print("ok %s (%.1fs)" % (name, time.monotonic() - t0), flush=True)
        finally:
            signal.alarm(0)
            bad = cl.stop_all()
            if os.environ.get("CHAOS_SHOW_LOG") or bad:
                for log in cl.logs:
                    print("---- " + log)
                    print(open(log, errors="replace").read()[-3000:])
        if bad:
            fail("; ".join(bad))
    print("all checks held (%.0fs)" % (time.monotonic() - START))


if __name__ == "__main__":
    main()
