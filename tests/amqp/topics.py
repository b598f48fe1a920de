"""Tutorial 5, topics: topic exchange with * and # patterns."""
from common import check, connect, expect_silence, name, ok, receive

conn = connect()
ch = conn.channel()
ex = name("topic_logs")
ch.exchange_declare(exchange=ex, exchange_type="topic")
q1 = ch.queue_declare(queue="", exclusive=True).method.queue
q2 = ch.queue_declare(queue="", exclusive=True).method.queue
ch.queue_bind(exchange=ex, queue=q1, routing_key="*.orange.*")
ch.queue_bind(exchange=ex, queue=q2, routing_key="*.*.rabbit")
ch.queue_bind(exchange=ex, queue=q2, routing_key="lazy.#")
cases = {
    "quick.orange.rabbit": (1, 1), "lazy.orange.elephant": (1, 1),
    "quick.orange.fox": (1, 0), "lazy.brown.fox": (0, 1),
    "lazy.pink.rabbit": (0, 1), "quick.brown.fox": (0, 0),
    "orange": (0, 0), "lazy.orange.male.rabbit": (0, 1),
}
for key in cases:
    ch.basic_publish(exchange=ex, routing_key=key, body=key.encode())
want1 = sorted(k.encode() for k, v in cases.items() if v[0])
want2 = sorted(k.encode() for k, v in cases.items() if v[1])
got1 = sorted(g[2] for g in receive(ch, q1, len(want1)))
got2 = sorted(g[2] for g in receive(ch, q2, len(want2)))
check(got1 == want1, "q1 got %r want %r" % (got1, want1))
check(got2 == want2, "q2 got %r want %r" % (got2, want2))
check(expect_silence(ch, q1) and expect_silence(ch, q2), "extra messages")
# amq.topic is predeclared
q3 = ch.queue_declare(queue="", exclusive=True).method.queue
ch.queue_bind(exchange="amq.topic", queue=q3, routing_key="a.#")
ch.basic_publish(exchange="amq.topic", routing_key="a.b.c", body=b"amq")
check([g[2] for g in receive(ch, q3, 1)] == [b"amq"], "amq.topic did not route")
conn.close()
ok("topics")
