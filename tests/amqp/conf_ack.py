"""Conformance, acknowledgements and counts: basic.nack / basic.reject with
and without requeue and `multiple`; message_count counts ready messages only
(delivered-but-unacked ones are not ready) and sees a requeue at once;
unacked deliveries are back after channel.close and after basic.cancel plus
close; consumer_count; exclusive consumers; a consumer whose queue is deleted gets basic.cancel
from the broker (consumer_cancel_notify)."""
import time

import pika.exceptions as pex

from common import check, connect, name, ok

conn = connect()
ch = conn.channel()
ch.confirm_delivery()
q = name("conf-ack")


def count(queue=None):
    return ch.queue_declare(queue or q, passive=True).method.message_count


def consumers(queue=None):
    return ch.queue_declare(queue or q, passive=True).method.consumer_count


def fill(n):
    for i in range(n):
        ch.basic_publish("", q, b"m%d" % i)


ch.queue_declare(q)
fill(3)
check(count() == 3, "3 published, count %d" % count())
c = conn.channel()
m1, _, _ = c.basic_get(q)
check(count() == 2, "one delivered unacked: count %d, want 2" % count())
c.basic_nack(m1.delivery_tag, requeue=False)
check(count() == 2, "nack requeue=False: count %d, want 2" % count())
m2, _, b2 = c.basic_get(q)
c.basic_reject(m2.delivery_tag, requeue=True)
check(count() == 2, "reject requeue=True: count %d, want 2 at once" % count())
m3, _, b3 = c.basic_get(q)
m4, _, b4 = c.basic_get(q)
check(m3 is not None and m4 is not None, "the requeued message did not come back")
again = [m for m, b in ((m3, b3), (m4, b4)) if b == b2]
check(len(again) == 1 and again[0].redelivered, "requeued message not flagged redelivered")
check(count() == 0, "two unacked: count %d, want 0" % count())
c.basic_nack(m4.delivery_tag, multiple=True, requeue=True)
check(count() == 2, "nack multiple requeue: count %d, want 2" % count())
ma, _, _ = c.basic_get(q)
mb, _, _ = c.basic_get(q)
c.basic_nack(mb.delivery_tag, multiple=True, requeue=False)
check(count() == 0, "nack multiple drop: count %d, want 0" % count())
check(c.basic_get(q)[0] is None, "queue should be empty")

# channel.close returns unacked deliveries, visible at once
fill(2)
c2 = conn.channel()
c2.basic_get(q)
c2.basic_get(q)
check(count() == 0, "two unacked on c2: count %d" % count())
c2.close()
check(count() == 2, "after channel.close: count %d, want 2" % count())

# queue.purge removes ready messages only: unacked ones come back on close
ch.queue_purge(q)
fill(5)
c8 = conn.channel()
c8.basic_get(q)
c8.basic_get(q)
purged = ch.queue_purge(q).method.message_count
check(purged == 3, "purge-ok count %d, want 3 (ready only)" % purged)
check(count() == 0, "after purge: count %d" % count())
c8.close()
check(count() == 2, "unacked survived the purge: count %d, want 2" % count())

# an ackable consumer, cancelled: its unacked stay unacked until acked/closed
c3 = conn.channel()
c3.basic_qos(prefetch_count=10)
got = []
tag = c3.basic_consume(q, lambda ch_, m, p, b: got.append(m))
deadline = time.monotonic() + 10
while len(got) < 2 and time.monotonic() < deadline:
    conn.process_data_events(time_limit=0.1)
check(len(got) == 2, "consumer got %d of 2" % len(got))
check(consumers() == 1, "consumer_count %d, want 1" % consumers())
c3.basic_cancel(tag)
check(consumers() == 0, "consumer_count after cancel %d" % consumers())
check(count() == 0, "cancelled consumer's unacked: count %d, want 0" % count())
c3.basic_ack(got[0].delivery_tag)
c3.close()
check(count() == 1, "after ack of one and close: count %d, want 1" % count())
ch.queue_purge(q)

# exclusive consumers: alone on their queue
xq = name("conf-xcons")
ch.queue_declare(xq)
c5 = conn.channel()
c5.basic_consume(xq, lambda *a: None, exclusive=True)
for what, kw in (("a second consumer", {}), ("a second exclusive one", {"exclusive": True})):
    c6 = conn.channel()
    try:
        c6.basic_consume(xq, lambda *a: None, **kw)
        check(False, "%s next to an exclusive consumer was accepted" % what)
    except pex.ChannelClosedByBroker as e:
        check(e.reply_code == 403, "%s: %d %s" % (what, e.reply_code, e.reply_text))
c5.close()
c6 = conn.channel()
c6.basic_consume(xq, lambda *a: None)  # free again
c7 = conn.channel()
try:
    c7.basic_consume(xq, lambda *a: None, exclusive=True)
    check(False, "exclusive consumer next to another consumer was accepted")
except pex.ChannelClosedByBroker as e:
    check(e.reply_code == 403, "exclusive next to one: %d" % e.reply_code)
c6.close()
ch.queue_delete(xq)

# the same consumer tag on two channels of one connection (unique per channel)
tq = name("conf-sametag")
ch.queue_declare(tq)
seen = {1: 0, 2: 0}
ca, cb = conn.channel(), conn.channel()
ca.basic_consume(tq, lambda c_, m, p, b: seen.__setitem__(1, seen[1] + 1), auto_ack=True,
                 consumer_tag="same")
cb.basic_consume(tq, lambda c_, m, p, b: seen.__setitem__(2, seen[2] + 1), auto_ack=True,
                 consumer_tag="same")
for i in range(10):
    ch.basic_publish("", tq, b"t%d" % i)
deadline = time.monotonic() + 10
while seen[1] + seen[2] < 10 and time.monotonic() < deadline:
    conn.process_data_events(time_limit=0.1)
check(seen[1] + seen[2] == 10 and seen[1] > 0 and seen[2] > 0,
      "same tag on two channels: %r" % seen)
ca.basic_cancel("same")
cb.basic_cancel("same")
ch.queue_delete(tq)

# queue deleted under a consumer: basic.cancel from the broker
q2 = name("conf-ack-del")
ch.queue_declare(q2)
c4 = conn.channel()
cancelled = []
c4.add_on_cancel_callback(lambda frame: cancelled.append(frame))
c4.basic_consume(q2, lambda ch_, m, p, b: None)
ch.queue_delete(q2)
deadline = time.monotonic() + 10
while not cancelled and time.monotonic() < deadline:
    conn.process_data_events(time_limit=0.1)
check(len(cancelled) == 1, "no basic.cancel from the broker after queue.delete")
check(c4.is_open, "the consumer's channel should stay open")
ch.queue_delete(q)
conn.close()
ok("acks, counts, cancel notify")
