"""Conformance, tx class as RabbitMQ defines it: publishes and acks of a
transactional channel take effect at tx.commit (commit-ok once stored),
tx.rollback forgets them, commit without select and mixing tx with confirms
are channel errors."""
import pika.exceptions as pex

from common import check, connect, name, ok

conn = connect()
ch = conn.channel()
q = name("conf-tx")
ch.queue_declare(q)


def count():
    return ch.queue_declare(q, passive=True).method.message_count


t = conn.channel()
t.tx_select()
t.basic_publish("", q, b"a")
t.basic_publish("", q, b"b")
check(count() == 0, "uncommitted publishes visible: %d" % count())
t.tx_commit()
check(count() == 2, "after commit: %d, want 2" % count())
t.basic_publish("", q, b"c")
t.tx_rollback()
t.tx_commit()
check(count() == 2, "rolled-back publish stored: %d" % count())
# acks inside a transaction
m, _, body = t.basic_get(q)
check(body == b"a", "got %r" % body)
t.basic_ack(m.delivery_tag)
t.tx_rollback()  # the ack is forgotten: still unacked
t.basic_ack(m.delivery_tag)
t.tx_commit()
t.close()
check(count() == 1, "acked in a committed tx: %d, want 1" % count())


def channel_error(fn, code, what):
    c = conn.channel()
    try:
        fn(c)
    except pex.ChannelClosedByBroker as e:
        check(e.reply_code == code, "%s: %d %s" % (what, e.reply_code, e.reply_text))
        check(conn.is_open, "%s closed the connection" % what)
        return
    check(False, "%s: no channel error" % what)


channel_error(lambda c: c.tx_commit(), 406, "commit without select")
channel_error(lambda c: c.tx_rollback(), 406, "rollback without select")


def confirm_then_tx(c):
    c.confirm_delivery()
    c.tx_select()


channel_error(confirm_then_tx, 406, "tx.select on a confirm channel")
ch.queue_delete(q)
conn.close()
ok("tx class")
