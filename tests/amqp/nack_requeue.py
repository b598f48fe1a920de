"""Negative acknowledgements: nack with requeue redelivers (redelivered
flag set), reject without requeue drops, a closed channel's unacked
messages come back."""
import time

from common import check, connect, expect_silence, name, ok

conn = connect()
ch = conn.channel()
q = name("nack")
ch.queue_declare(queue=q)
ch.basic_publish(exchange="", routing_key=q, body=b"one")


def next_message(chan, timeout=10):
    deadline = time.monotonic() + timeout
    for method, props, body in chan.consume(q, inactivity_timeout=0.5):
        if method is not None:
            return method, body
        if time.monotonic() > deadline:
            return None, None


m, body = next_message(ch)
check(m is not None and body == b"one", "first delivery %r" % (body,))
check(not m.redelivered, "first delivery flagged redelivered")
ch.basic_nack(delivery_tag=m.delivery_tag, requeue=True)
m, body = next_message(ch)
check(m is not None and body == b"one", "no redelivery after nack")
check(m.redelivered, "redelivery not flagged")
ch.basic_reject(delivery_tag=m.delivery_tag, requeue=False)
ch.cancel()
check(expect_silence(ch, q), "rejected message came back")
# unacked on a closed channel returns to the queue
ch.basic_publish(exchange="", routing_key=q, body=b"two")
ch2 = conn.channel()
m, body = next_message(ch2)
check(body == b"two", "got %r" % (body,))
ch2.close()
m, body = next_message(ch)
check(m is not None and body == b"two" and m.redelivered, "closed channel did not requeue")
ch.basic_ack(m.delivery_tag)
ch.cancel()
ch.queue_delete(queue=q)
conn.close()
ok("nack/reject/requeue")
