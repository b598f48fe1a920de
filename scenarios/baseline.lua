-- baseline: no faults at all. Every expectation, including per-producer
-- ordering, must hold; a failure here is a broker or harness bug, never a
-- fault effect. Run it first when something else fails.
scenario {
  name = "baseline",
  description = "No faults: a healthy 3-replica cluster confirms, delivers "
    .. "in order and agrees on everything.",
  seeds = "1..5",
}

cluster { replicas = 3, acks = "quorum", fsync = "always", election = "safe", dedup = true }
network { latency_ms = 1, jitter_ms = 0.5 }
workload {
  queue = "orders",
  producers = { count = 2, rate = 200, idempotent = true },
  consumers = { count = 1, prefetch = 32, ack = "manual" },
}
phases { chaos = 10, heal = 2, drain = 10 }

expect {
  no_loss = true, no_duplicates = true, no_phantoms = true, ordering = true,
  replica_agreement = true,
  availability = 0.99, recovery = 1, max_unavailable = 0.5,
}
