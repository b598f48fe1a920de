"""Shared helpers for the pika acceptance programs (tests/amqp/*.py).

Each program takes the AMQP port as its first argument (host 127.0.0.1),
exits 0 when every check held and 1 (with a message) otherwise. Names get a
per-run suffix so programs can run again against the same data dir.
"""
import os
import sys
import time

import pika

TIMEOUT_S = 15.0


def port():
    if len(sys.argv) < 2:
        sys.exit("usage: %s PORT" % sys.argv[0])
    return int(sys.argv[1])


def name(base):
    return "%s-%d-%d" % (base, os.getpid(), int(time.time() * 1000) % 1000000)


def connect(p=None):
    params = pika.ConnectionParameters(
        host="127.0.0.1", port=p or port(), heartbeat=30,
        blocked_connection_timeout=TIMEOUT_S, socket_timeout=5,
        connection_attempts=3, retry_delay=0.5)
    return pika.BlockingConnection(params)


def check(cond, what):
    if not cond:
        print("FAIL: " + what, flush=True)
        sys.exit(1)


def receive(channel, queue, count, auto_ack=True, timeout=TIMEOUT_S):
    """Consume `count` messages from `queue`; returns [(method, props, body)]."""
    got = []
    deadline = time.monotonic() + timeout
    for method, props, body in channel.consume(queue, auto_ack=auto_ack,
                                               inactivity_timeout=0.5):
        if method is not None:
            got.append((method, props, body))
            if not auto_ack:
                channel.basic_ack(method.delivery_tag)
        if len(got) >= count or time.monotonic() > deadline:
            break
    channel.cancel()
    return got


def expect_silence(channel, queue, seconds=0.7):
    """No message arrives on `queue` for `seconds`."""
    method, _, _ = channel.basic_get(queue, auto_ack=True)
    if method is not None:
        return False
    time.sleep(seconds)
    method, _, _ = channel.basic_get(queue, auto_ack=True)
    return method is None


def ok(what):
    print("ok: " + what, flush=True)
    sys.exit(0)
