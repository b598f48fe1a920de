-- Late confirms make idempotent producers retry; with broker dedup off the
-- retries are stored twice: expect{duplicate_enqueues = 0} must fail, while
-- the idempotent consumer keeps no_duplicates.
scenario { name = "engine_dup_enqueues" }
cluster { replicas = 3, dedup = false, election_timeout_ms = 1500, heartbeat_ms = 100 }
workload {
  producers = { count = 2, rate = 100, idempotent = true, timeout_ms = 250, retries = 30, backoff_ms = 50 },
  consumers = { count = 1, idempotent = true },
}
phases { chaos = 8, heal = 3, drain = 12 }
at(3, function() links(all(), { latency_ms = 300 }) end)
at(6, function() heal() end)
expect { no_loss = true, no_duplicates = true, duplicate_enqueues = 0 }
