"""Tutorial 3, publish/subscribe: fanout exchange, server-named exclusive
queues; every subscriber gets every message."""
from common import check, connect, name, ok, receive

conn = connect()
ch = conn.channel()
ex = name("logs")
ch.exchange_declare(exchange=ex, exchange_type="fanout")
queues = []
for _ in range(2):
    r = ch.queue_declare(queue="", exclusive=True)
    qn = r.method.queue
    check(qn.startswith("amq.gen-"), "server-named queue %r" % qn)
    ch.queue_bind(exchange=ex, queue=qn)
    queues.append(qn)
check(queues[0] != queues[1], "two server-named queues share a name")
for i in range(5):
    ch.basic_publish(exchange=ex, routing_key="", body=("log %d" % i).encode())
for qn in queues:
    got = receive(ch, qn, 5)
    bodies = sorted(g[2] for g in got)
    check(bodies == sorted(("log %d" % i).encode() for i in range(5)),
          "queue %s got %r" % (qn, bodies))
conn.close()
ok("publish/subscribe")
