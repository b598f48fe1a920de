"""Chaos publisher: N persistent messages with unique ids, publisher confirms,
failover between nodes.

usage: chaos_publisher.py PORTS N QUEUE CONFIRMED_FILE
  PORTS           comma-separated AMQP ports (127.0.0.1), tried in order
  N               messages to publish (ids "<run>-<i>", i = 0..N-1)
  QUEUE           durable queue to publish to (declared here)
  CONFIRMED_FILE  one line per confirmed id, appended and flushed at once

Publishes one message at a time and waits for its confirm (pika's blocking
channel in confirm mode), so after every confirm the file is exact. When the
connection is lost (the node was killed) or the broker nacks, the outcome of
that message is unknown: it is sent again on a connection to the next port,
with the same id, so the consumer may see it twice but never should lose a
confirmed one. Prints "confirmed K" every 100 confirms (the test watches
this to time its kill) and a summary at the end. Exits 0 when all N were
confirmed, 1 when the deadline passed first.
"""
import os
import sys
import time

import pika

DEADLINE_S = 50.0
RETRY_PAUSE_S = 0.2
PROGRESS_EVERY = 100


def connect(port):
    params = pika.ConnectionParameters(
        host="127.0.0.1", port=port, heartbeat=30, socket_timeout=3,
        blocked_connection_timeout=15, connection_attempts=1)
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    ch.confirm_delivery()
    return conn, ch


def close_quietly(conn):
    try:
        if conn is not None and conn.is_open:
            conn.close()
    except Exception:  # the connection is already broken: nothing to close
        pass


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: %s PORTS N QUEUE CONFIRMED_FILE" % sys.argv[0])
    ports = [int(p) for p in sys.argv[1].split(",")]
    n = int(sys.argv[2])
    queue = sys.argv[3]
    run = "%d-%d" % (os.getpid(), int(time.time() * 1000) % 1000000)
    out = open(sys.argv[4], "a")
    deadline = time.monotonic() + DEADLINE_S
    conn, ch = None, None
    node = 0
    confirmed = reconnects = resent = nacked = 0
    i = 0
    while i < n and time.monotonic() < deadline:
        if ch is None:
            try:
                conn, ch = connect(ports[node])
                ch.queue_declare(queue=queue, durable=True)
                print("connected to port %d" % ports[node], flush=True)
            except Exception as e:  # refused, reset, timed out: next node
                print("connect %d: %s" % (ports[node], type(e).__name__), flush=True)
                close_quietly(conn)
                conn, ch = None, None
                node = (node + 1) % len(ports)
                reconnects += 1
                time.sleep(RETRY_PAUSE_S)
                continue
        msg_id = "%s-%d" % (run, i)
        try:
            ch.basic_publish(exchange="", routing_key=queue, body=msg_id.encode(),
                             properties=pika.BasicProperties(delivery_mode=2))
        except pika.exceptions.NackError:
            nacked += 1
            resent += 1
            continue  # not stored: send the same id again
        except Exception as e:  # connection lost: outcome unknown
            print("publish %s: %s: moving on" % (msg_id, type(e).__name__), flush=True)
            close_quietly(conn)
            conn, ch = None, None
            node = (node + 1) % len(ports)
            resent += 1
            continue
        out.write(msg_id + "\n")
        out.flush()
        confirmed += 1
        i += 1
        if confirmed % PROGRESS_EVERY == 0:
            print("confirmed %d" % confirmed, flush=True)
    close_quietly(conn)
    out.close()
    print("published %d: confirmed %d, re-sent %d, nacked %d, reconnects %d"
          % (n, confirmed, resent, nacked, reconnects), flush=True)
    sys.exit(0 if confirmed == n else 1)


main()
