"""Publisher confirms: every publish is acked once the broker holds it
(committed on a quorum and fsynced with the default strategy); an
unroutable mandatory publish comes back (basic.return) before its ack."""
import pika

from common import check, connect, name, ok

N = 200
conn = connect()
ch = conn.channel()
ch.confirm_delivery()
q = name("confirmed")
ch.queue_declare(queue=q, durable=True)
for i in range(N):
    # BlockingChannel raises on a nack; returns normally on an ack.
    ch.basic_publish(exchange="", routing_key=q, body=b"m%d" % i,
                     properties=pika.BasicProperties(delivery_mode=2),
                     mandatory=True)
count = ch.queue_declare(queue=q, passive=True).method.message_count
check(count == N, "queue holds %d, want %d" % (count, N))
try:
    ch.basic_publish(exchange="", routing_key=name("nowhere"), body=b"x",
                     mandatory=True)
    check(False, "unroutable mandatory publish was not returned")
except pika.exceptions.UnroutableError as e:
    check(len(e.messages) == 1, "returned %d messages" % len(e.messages))
    check(e.messages[0].method.reply_code == 312, "reply code %r" % e.messages[0].method.reply_code)
# non-mandatory unroutable: acked, dropped
ch.basic_publish(exchange="", routing_key=name("nowhere"), body=b"y")
ch.queue_purge(queue=q)
count = ch.queue_declare(queue=q, passive=True).method.message_count
check(count == 0, "after purge %d" % count)
ch.queue_delete(queue=q)
conn.close()
ok("publisher confirms")
