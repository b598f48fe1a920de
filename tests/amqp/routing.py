"""Tutorial 4, routing: direct exchange, bindings by severity."""
from common import check, connect, expect_silence, name, ok, receive

conn = connect()
ch = conn.channel()
ex = name("direct_logs")
ch.exchange_declare(exchange=ex, exchange_type="direct")
errors = ch.queue_declare(queue="", exclusive=True).method.queue
every = ch.queue_declare(queue="", exclusive=True).method.queue
ch.queue_bind(exchange=ex, queue=errors, routing_key="error")
for sev in ("info", "warning", "error"):
    ch.queue_bind(exchange=ex, queue=every, routing_key=sev)
for sev in ("info", "warning", "error", "debug"):
    ch.basic_publish(exchange=ex, routing_key=sev, body=sev.encode())
got = receive(ch, errors, 1)
check([g[2] for g in got] == [b"error"], "errors queue got %r" % [g[2] for g in got])
check(expect_silence(ch, errors), "errors queue got more")
got = receive(ch, every, 3)
check(sorted(g[2] for g in got) == [b"error", b"info", b"warning"],
      "every queue got %r" % [g[2] for g in got])
check(expect_silence(ch, every), "debug was routed")
# unbind: errors no longer routed to `every`
ch.queue_unbind(exchange=ex, queue=every, routing_key="error")
ch.basic_publish(exchange=ex, routing_key="error", body=b"e2")
check(expect_silence(ch, every), "unbind did not take effect")
conn.close()
ok("routing")
