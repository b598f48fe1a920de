"""Chaos consumer: drain a queue after the chaos, recording every body.

usage: chaos_consumer.py PORTS QUEUE CONSUMED_FILE
  PORTS          comma-separated AMQP ports (127.0.0.1), tried in order
  QUEUE          the durable queue to drain
  CONSUMED_FILE  one line per delivery (duplicates included), flushed

Consumes with manual acks (an id is written before its ack, so a lost ack
shows up as a duplicate, never as a loss) until nothing has arrived for
IDLE_S and a passive declare says the queue is empty, reconnecting to the
next port when a connection fails. Prints "consumed K". Exits 0 when the
queue was drained, 1 when the deadline passed first.
"""
import sys
import time

import pika

DEADLINE_S = 40.0
IDLE_S = 2.0
PREFETCH = 200


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: %s PORTS QUEUE CONSUMED_FILE" % sys.argv[0])
    ports = [int(p) for p in sys.argv[1].split(",")]
    queue = sys.argv[2]
    out = open(sys.argv[3], "a")
    deadline = time.monotonic() + DEADLINE_S
    consumed = 0
    node = 0
    drained = False
    while not drained and time.monotonic() < deadline:
        conn = None
        try:
            params = pika.ConnectionParameters(host="127.0.0.1", port=ports[node],
                                               heartbeat=30, socket_timeout=3,
                                               connection_attempts=1)
            conn = pika.BlockingConnection(params)
            ch = conn.channel()
            ch.basic_qos(prefetch_count=PREFETCH)
            ch.queue_declare(queue=queue, durable=True)
            idle_since = time.monotonic()
            for method, _, body in ch.consume(queue, inactivity_timeout=0.25):
                now = time.monotonic()
                if method is not None:
                    out.write(body.decode(errors="replace") + "\n")
                    out.flush()
                    ch.basic_ack(method.delivery_tag)
                    consumed += 1
                    idle_since = now
                elif now - idle_since >= IDLE_S:
                    left = ch.queue_declare(queue=queue, passive=True).method.message_count
                    if left == 0:
                        drained = True
                        break
                    idle_since = now
                if now > deadline:
                    break
            ch.cancel()
            conn.close()
        except Exception as e:  # node down or connection lost: next node
            print("port %d: %s" % (ports[node], type(e).__name__), flush=True)
            try:
                if conn is not None and conn.is_open:
                    conn.close()
            except Exception:
                pass
            node = (node + 1) % len(ports)
            time.sleep(0.2)
    out.close()
    print("consumed %d (%s)" % (consumed, "drained" if drained else "deadline passed"),
          flush=True)
    sys.exit(0 if drained else 1)


main()
