-- retry_dead_letter: consumers refuse some deliveries. A transient failure
-- (5% of deliveries) is NACKed with requeue: the broker delivers the message
-- again and the retry succeeds. A poison message (every 100th) fails every
-- time: after delivery_limit deliveries the broker moves it to the
-- dead-letter queue, where a consumer of its own picks it up. A leader
-- crash in the middle must not lose a retry, a dead-lettering, or the
-- delivery counts that drive it.
scenario {
  name = "retry_dead_letter",
  description = "Nack/requeue retries and poison messages: delivery limit, then the "
    .. "dead-letter queue and its consumer, across a leader crash.",
  seeds = "1..5",
}

cluster { replicas = 3, acks = "quorum", fsync = "always", ack_timeout_ms = 1000 }
workload {
  queue = "orders", dead_letter = "orders.dlq", delivery_limit = 3,
  dead_letter_consumers = 1,
  producers = { rate = 100, timeout_ms = 500, retries = 20 },
  consumers = {
    idempotent = true,
    nack = { probability = 0.05, requeue = true },   -- transient: try again
    poison = { every = 100, requeue = true },        -- always fails: dead-lettered
  },
}
phases { chaos = 10, heal = 3, drain = 12 }

at(5, function() crash(leader()) end)
at(6, function() restart(down()) end)

expect { no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true }
