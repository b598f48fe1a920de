"""basic.get: one message at a time with the count of those left, empty
when the queue is; a get without ack comes back when nacked."""
from common import check, connect, name, ok

conn = connect()
ch = conn.channel()
q = name("get")
ch.queue_declare(queue=q)
for i in range(3):
    ch.basic_publish(exchange="", routing_key=q, body=b"g%d" % i)
bodies = []
# message_count: messages left. The node counts a message until the removal
# of an auto-acked get is committed, so the second count may still be 2.
for left in ((2,), (1, 2)):
    m, props, body = ch.basic_get(q, auto_ack=True)
    check(m is not None, "get returned nothing")
    check(m.message_count in left, "message_count %d, want %r" % (m.message_count, left))
    bodies.append(body)
m, props, body = ch.basic_get(q, auto_ack=False)
check(m is not None, "third get empty")
bodies.append(body)
check(sorted(bodies) == [b"g0", b"g1", b"g2"], "bodies %r" % bodies)
ch.basic_nack(m.delivery_tag, requeue=True)
# the requeue is a replicated command: it shows up once committed
import time
for _ in range(50):
    m2, _, body2 = ch.basic_get(q, auto_ack=False)
    if m2 is not None:
        break
    time.sleep(0.05)
check(m2 is not None and body2 == body and m2.redelivered, "nacked get not redelivered")
ch.basic_ack(m2.delivery_tag)
m, _, _ = ch.basic_get(q, auto_ack=True)
check(m is None, "queue should be empty")
# passive declare of a missing queue: 404 closes the channel
import pika
try:
    ch.queue_declare(queue=name("missing"), passive=True)
    check(False, "passive declare of a missing queue succeeded")
except pika.exceptions.ChannelClosedByBroker as e:
    check(e.reply_code == 404, "reply code %d" % e.reply_code)
ch = conn.channel()
ch.queue_delete(queue=q)
conn.close()
ok("basic.get")
