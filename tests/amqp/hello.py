"""Tutorial 1, hello world: default exchange, one message, one consumer."""
from common import check, connect, name, ok, receive

conn = connect()
ch = conn.channel()
q = name("hello")
ch.queue_declare(queue=q)
ch.basic_publish(exchange="", routing_key=q, body=b"Hello World!")
got = receive(ch, q, 1)
check(len(got) == 1, "got %d messages, want 1" % len(got))
check(got[0][2] == b"Hello World!", "body %r" % (got[0][2],))
check(got[0][0].routing_key == q, "routing key %r" % got[0][0].routing_key)
ch.queue_delete(queue=q)
conn.close()
ok("hello world")
