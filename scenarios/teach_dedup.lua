-- teach_dedup: confirms come back later than the producers' timeout (a
-- latency spike on every link), so producers retry publishes the broker
-- already stored. The producers are idempotent: a retry carries the same
-- (producer id, sequence) as the original. With broker dedup off nothing
-- looks at that pair: the retry is appended as a second message, the queue
-- holds both and the consumer processes the message twice. With dedup on,
-- the broker's dedup table (replicated, so it survives failover) drops the
-- copy and confirms again. (Non-idempotent producers take a new sequence
-- per retry, so they duplicate even with dedup on: both halves are needed.)
scenario {
  name = "teach_dedup",
  description = "Broker dedup off vs on for idempotent producers that retry "
    .. "publishes whose confirms came back late.",
  seeds = "1..5",
}

cluster { replicas = 3, election_timeout_ms = 1500, heartbeat_ms = 100 }
workload {
  producers = { count = 2, rate = 100, idempotent = true, timeout_ms = 250, retries = 30, backoff_ms = 50 },
  consumers = { count = 1, ack = "manual", idempotent = false },
}
phases { chaos = 11, heal = 3, drain = 15 }

at(4, function() log("latency spike: confirms arrive after the timeout"); links(all(), { latency_ms = 300 }) end)
at(8, function() heal() end)

expect { no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true }

teach {
  lesson = "retries without idempotence: a publish whose confirm was lost is "
    .. "stored twice and processed twice; producer ids + broker dedup fix it",
  violation = "no_duplicates",
  weak = { dedup = false },
  strong = { dedup = true },
}
