-- teach_idempotent_consumer: at-least-once delivery with consumers that
-- crash after processing a message but before acking it. The broker
-- redelivers what was never acked, so the same message is processed again
-- unless the consumer remembers the ids it processed (its own database)
-- and skips the repeat. Same cluster, same faults: only the consumer code
-- differs between the sides (a teach side's own workload table).
scenario {
  name = "teach_idempotent_consumer",
  description = "A non-idempotent vs an idempotent consumer when consumers crash "
    .. "between processing and acking.",
  seeds = "1..4",
}

cluster { replicas = 3, acks = "quorum", ack_timeout_ms = 1000 }
workload {
  producers = { rate = 100, timeout_ms = 500, retries = 20 },
  consumers = { count = 1, crash_before_ack = 0.01 },
}
phases { chaos = 8, heal = 2, drain = 25 }   -- crashed consumers come back slowly

at(4, function() crash(leader()) end)
at(5, function() restart(down()) end)

expect { no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true }

teach {
  lesson = "redelivery after a crash before the ack makes the consumer process the "
    .. "message twice; deduplicating by unique message id makes it exactly-once in effect",
  violation = "no_duplicates",
  weak = { workload = { consumers = { idempotent = false } } },
  strong = { workload = { consumers = { idempotent = true } } },
}
