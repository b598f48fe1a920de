-- teach_ordering: per-producer ordering through leader crashes. With 32
-- publishes in flight, a crash leaves a gap: the publishes the dead leader
-- never committed time out and are retried after later ones already went
-- through the new leader, so the consumer sees them out of order. With one
-- publish in flight (window = 1) the next message is not sent until the
-- previous one is confirmed, so retries cannot overtake: order holds, at
-- the price of one round trip per message. The sides differ only in the
-- producer's window (a side's own workload table).
scenario {
  name = "teach_ordering",
  description = "Producer window 32 vs 1 through leader crashes: per-producer order "
    .. "of first deliveries.",
  seeds = "1..4",
}

cluster { replicas = 3, acks = "quorum", fsync = "always" }
workload {
  producers = { rate = 100, timeout_ms = 300, retries = 30, backoff_ms = 20 },
  consumers = { count = 1, idempotent = true },
  probe = false,   -- the probe is a producer too: keep the lesson about one stream
}
phases { chaos = 10, heal = 2, drain = 10 }

at(3, function() crash(leader()) end)
at(4, function() restart(down()) end)
at(7, function() crash(leader()) end)
at(8, function() restart(down()) end)

expect { no_loss = true, no_duplicates = true, replica_agreement = true, ordering = true }

teach {
  lesson = "publishes in flight together can be retried out of order after a failover; "
    .. "one publish in flight keeps order",
  violation = "ordering",
  weak = { workload = { producers = { window = 32 } } },
  strong = { workload = { producers = { window = 1 } } },
}
