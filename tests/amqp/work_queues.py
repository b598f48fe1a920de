"""Tutorial 2, work queues: durable queue, persistent messages, prefetch 1,
manual acks, two workers sharing the load; nothing is lost or doubled."""
import pika

from common import check, connect, name, ok

N = 20
conn = connect()
ch = conn.channel()
q = name("task_queue")
ch.queue_declare(queue=q, durable=True)
for i in range(N):
    ch.basic_publish(exchange="", routing_key=q, body=("task %d" % i).encode(),
                     properties=pika.BasicProperties(
                         delivery_mode=pika.spec.PERSISTENT_DELIVERY_MODE,
                         content_type="text/plain", headers={"n": i}))
# The queue holds them all (a passive declare counts).
count = ch.queue_declare(queue=q, passive=True).method.message_count
check(count == N, "passive declare counts %d, want %d" % (count, N))

w1 = conn.channel()
w2 = conn.channel()
seen = {}
for w in (w1, w2):
    w.basic_qos(prefetch_count=1)


def worker(chan, label):
    def on_msg(c, method, props, body):
        check(props.delivery_mode == 2, "delivery_mode %r" % props.delivery_mode)
        check(props.content_type == "text/plain", "content_type %r" % props.content_type)
        check(props.headers.get("n") is not None, "headers lost: %r" % props.headers)
        seen.setdefault(body, []).append(label)
        c.basic_ack(delivery_tag=method.delivery_tag)
    chan.basic_consume(queue=q, on_message_callback=on_msg)


worker(w1, "w1")
worker(w2, "w2")
import time
deadline = time.monotonic() + 15
while len(seen) < N and time.monotonic() < deadline:
    conn.process_data_events(time_limit=0.2)
check(len(seen) == N, "received %d distinct tasks, want %d" % (len(seen), N))
check(all(len(v) == 1 for v in seen.values()), "a task was delivered twice")
labels = [v[0] for v in seen.values()]
check("w1" in labels and "w2" in labels, "prefetch 1 should share the work: %r" % labels)
conn.close()
# acked: nothing left
conn = connect()
ch = conn.channel()
# acks are replicated commands: the count drops once they are committed
for _ in range(100):
    count = ch.queue_declare(queue=q, passive=True).method.message_count
    if count == 0:
        break
    time.sleep(0.05)
check(count == 0, "after acks %d messages left" % count)
ch.queue_delete(queue=q)
conn.close()
ok("work queues")
