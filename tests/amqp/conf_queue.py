"""Conformance, queue class and limits: the "current queue" (an empty queue
name means the channel's last declared queue), redeclare with other
properties (406), exclusive queues (405 for other connections), unsupported
arguments refused
instead of ignored, auto_delete queues deleted when their last consumer
goes, the message size limit enforced at the content header (a message just
under it is stored and read back whole), and a connection error that
reaches the client as connection.close (not a reset)."""
import pika
import pika.exceptions as pex

from common import check, connect, name, ok

conn = connect()
ch = conn.channel()
ch.confirm_delivery()


def channel_error(fn, code, what):
    c = conn.channel()
    try:
        fn(c)
    except pex.ChannelClosedByBroker as e:
        check(e.reply_code == code, "%s: %d %s" % (what, e.reply_code, e.reply_text))
        check(conn.is_open, "%s closed the connection" % what)
        return e.reply_text
    check(False, "%s: no channel error" % what)


# the current queue
x = name("conf-cur-x")
ch.exchange_declare(x, exchange_type="direct")
q = ch.queue_declare("", exclusive=True).method.queue
ch.queue_bind("", x, routing_key="k")  # empty name: the queue just declared
ch.basic_publish(x, "k", b"via current")
m, _, body = ch.basic_get("")
check(m is not None and body == b"via current", "current queue: %r" % (body,))
ch.basic_publish("", q, b"2")
check(ch.queue_declare("", passive=True).method.message_count == 1, "passive current")
ch.queue_purge("")
channel_error(lambda c: c.basic_get(""), 404, "no current queue on a fresh channel")
ch.exchange_delete(x)

# a redeclare must match durable / auto_delete / exclusive: 406
rq = name("conf-redeclare")
ch.queue_declare(rq, durable=True)
ch.queue_declare(rq, durable=True)
channel_error(lambda c: c.queue_declare(rq, durable=False), 406, "redeclare non-durable")
channel_error(lambda c: c.queue_declare(rq, durable=True, auto_delete=True), 406,
              "redeclare auto-delete")
ch.queue_delete(rq)

# an exclusive queue belongs to its connection: 405 for every other one
eq = name("conf-excl")
ch.queue_declare(eq, exclusive=True)
ch.basic_publish("", eq, b"mine")
other = connect()


def locked(fn, what):
    c = other.channel()
    try:
        fn(c)
    except pex.ChannelClosedByBroker as e:
        check(e.reply_code == 405, "%s: %d %s" % (what, e.reply_code, e.reply_text))
        return
    check(False, "%s from another connection: allowed" % what)


locked(lambda c: c.queue_declare(eq, exclusive=True), "declare")
locked(lambda c: c.queue_declare(eq, passive=True), "passive declare")
locked(lambda c: c.basic_get(eq), "basic.get")
locked(lambda c: c.basic_consume(eq, lambda *a: None), "basic.consume")
locked(lambda c: c.queue_purge(eq), "queue.purge")
locked(lambda c: c.queue_bind(eq, "amq.direct", routing_key="k"), "queue.bind")
check(ch.queue_declare(eq, passive=True).method.message_count == 1, "the owner lost it")
other.close()

# unsupported arguments are refused, never ignored
for args in ({"x-message-ttl": 1000}, {"x-expires": 60000}, {"x-max-length": 10},
             {"x-dead-letter-exchange": "dlx"}, {"x-max-priority": 5}):
    text = channel_error(lambda c: c.queue_declare(name("conf-arg"), arguments=args), 406,
                         "queue argument %r" % args)
    check(list(args)[0] in text, "error text names the argument: %r" % text)
ch.queue_declare(name("conf-classic"), arguments={"x-queue-type": "classic"}, auto_delete=True)

# auto_delete: gone when its last consumer is cancelled
ad = name("conf-autodel")
c = conn.channel()
c.queue_declare(ad, auto_delete=True)
ch.basic_publish("", ad, b"x")
check(ch.queue_declare(ad, passive=True).method.message_count == 1, "auto-delete kept")
tag = c.basic_consume(ad, lambda *a: None, auto_ack=True)
c.basic_cancel(tag)
channel_error(lambda c2: c2.queue_declare(ad, passive=True), 404, "auto-delete queue deleted")

# message size: just under the limit stored, above refused at the header
big = name("conf-big")
ch.queue_declare(big)
limit = 1024 * 1024 - 64  # what docs/amqp.md promises at least
body = bytes(range(256)) * (limit // 256)
ch.basic_publish("", big, body, pika.BasicProperties(delivery_mode=2))
m, _, got = ch.basic_get(big, auto_ack=True)
check(got == body, "large message not stored whole (%d bytes)" % (len(got or b""),))


def publish_too_big(c2):
    c2.basic_publish("", big, b"x" * (2 * 1024 * 1024))
    c2.basic_get(big)  # a round trip: the channel.close arrives first


channel_error(publish_too_big, 406, "a message over the limit")
ch.queue_delete(big)

conn.close()

# a connection error arrives as connection.close with its code
conn = connect()
c = conn.channel()
try:
    c.flow(False)  # RabbitMQ refuses channel.flow active=false: 540
except pex.ConnectionClosedByBroker as e:
    check(e.reply_code == 540, "flow(False): %d %s" % (e.reply_code, e.reply_text))
else:
    check(False, "flow(False) accepted")
ok("queue class, limits, connection methods")
