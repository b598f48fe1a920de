"""Conformance, exchange class: declare (passive too), delete (if_unused,
idempotent, bindings go with it), exchange-to-exchange bindings, unsupported types refused on the channel,
a publish to a missing exchange closes the channel with 404 and leaves the
connection usable, server capabilities."""
import pika
import pika.exceptions as pex

from common import check, connect, name, ok

conn = connect()
ch = conn.channel()


def channel_error(fn, code, what):
    """fn(channel) must close that channel with `code`; returns a new one."""
    c = conn.channel()
    try:
        fn(c)
    except pex.ChannelClosedByBroker as e:
        check(e.reply_code == code, "%s: got %d %s" % (what, e.reply_code, e.reply_text))
        check(conn.is_open, "%s: the connection closed too" % what)
        return conn.channel()
    check(False, "%s: no channel error" % what)


caps = conn._impl.server_capabilities
for cap in ("publisher_confirms", "basic.nack", "consumer_cancel_notify",
            "authentication_failure_close", "per_consumer_qos",
            "exchange_exchange_bindings"):
    check(caps.get(cap) is True, "capability %s: %r" % (cap, caps.get(cap)))
check("connection.blocked" in caps, "capabilities table incomplete: %r" % caps)

x = name("conf-x")
q = name("conf-q")
# passive declare of a missing exchange: 404 on the channel
channel_error(lambda c: c.exchange_declare(x, passive=True), 404, "passive missing exchange")
ch.exchange_declare(x, exchange_type="direct")
ch.exchange_declare(x, exchange_type="direct", passive=True)
ch.exchange_declare(x, exchange_type="direct")  # same again: fine
channel_error(lambda c: c.exchange_declare(x, exchange_type="fanout"), 406,
              "redeclare with another type")
# delete: if_unused refuses while bound, bindings go with the exchange
ch.queue_declare(q)
ch.queue_bind(q, x, routing_key="k")
channel_error(lambda c: c.exchange_delete(x, if_unused=True), 406, "delete if_unused, bound")
ch.exchange_delete(x)
channel_error(lambda c: c.exchange_declare(x, passive=True), 404, "deleted exchange is gone")
ch.exchange_delete(x)  # deleting what is gone succeeds (RabbitMQ 3.x)
channel_error(lambda c: c.exchange_delete("amq.direct"), 403, "delete of amq.direct")
# redeclared, the old binding is gone: nothing reaches q
ch.exchange_declare(x, exchange_type="direct")
ch.confirm_delivery()
ch.basic_publish(x, "k", b"lost?")
check(ch.queue_declare(q, passive=True).method.message_count == 0, "old binding survived")
ch.exchange_delete(x)
# exchange-to-exchange bindings: src (topic) -> mid (fanout) -> q
src, mid, qx = name("conf-src"), name("conf-mid"), name("conf-qx")
ch.exchange_declare(src, exchange_type="topic")
ch.exchange_declare(mid, exchange_type="fanout")
ch.queue_declare(qx)
ch.exchange_bind(destination=mid, source=src, routing_key="a.*")
ch.queue_bind(qx, mid)
ch.basic_publish(src, "a.b", b"through two exchanges")
ch.basic_publish(src, "b.b", b"not matched")
m, _, body = ch.basic_get(qx, auto_ack=True)
check(body == b"through two exchanges", "exchange binding: got %r" % (body,))
check(ch.basic_get(qx)[0] is None, "a non-matching key went through")
ch.exchange_bind(destination=src, source=mid)  # a cycle is harmless
ch.basic_publish(src, "a.c", b"once")
check(ch.queue_declare(qx, passive=True).method.message_count == 1, "cycle duplicated")
channel_error(lambda c: c.exchange_delete(mid, if_unused=True), 406, "delete of a source")
ch.exchange_unbind(destination=mid, source=src, routing_key="a.*")
ch.exchange_unbind(destination=src, source=mid)
ch.queue_purge(qx)
ch.basic_publish(src, "a.b", b"unbound")
check(ch.basic_get(qx)[0] is None, "exchange.unbind did not unbind")
channel_error(lambda c: c.exchange_bind(destination=name("nope"), source=src), 404,
              "exchange.bind to a missing exchange")
ch.exchange_delete(src)
ch.exchange_delete(mid)
ch.queue_delete(qx)
# an internal exchange: only through an exchange binding
ie, fe = name("conf-internal"), name("conf-front")
ch.exchange_declare(ie, exchange_type="fanout", internal=True)
ch.exchange_declare(fe, exchange_type="fanout")
ch.exchange_bind(destination=ie, source=fe)
qi = ch.queue_declare("", exclusive=True).method.queue
ch.queue_bind(qi, ie)
ch.basic_publish(fe, "", b"via front")
check(ch.basic_get(qi, auto_ack=True)[2] == b"via front", "internal exchange not reached")
channel_error(lambda c: c.confirm_delivery() or c.basic_publish(ie, "", b"direct"), 403,
              "direct publish to an internal exchange")
channel_error(lambda c: c.exchange_declare(ie, exchange_type="fanout"), 406,
              "redeclare internal as non-internal")
ch.exchange_delete(fe)
ch.exchange_delete(ie)
# unsupported types: refused on the channel, not by closing the connection
channel_error(lambda c: c.exchange_declare(name("h"), exchange_type="headers"), 406,
              "headers exchange")
channel_error(lambda c: c.exchange_declare(name("a"), arguments={"alternate-exchange": "ae"}),
              406, "alternate-exchange argument")
channel_error(lambda c: c.exchange_declare(name("a"), auto_delete=True), 406,
              "auto-delete exchange")


# a publish to a missing exchange: channel.close 404, with and without confirms
def publish_missing(c):
    c.basic_publish(name("nope"), "k", b"x")
    c.basic_get(q)  # a round trip: the close arrives first


channel_error(publish_missing, 404, "publish to a missing exchange")


def publish_missing_confirmed(c):
    c.confirm_delivery()
    c.basic_publish(name("nope"), "k", b"x")


channel_error(publish_missing_confirmed, 404, "confirmed publish to a missing exchange")
ch = conn.channel()
ch.queue_delete(q)
conn.close()
ok("exchange class")
