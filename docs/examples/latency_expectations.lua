-- Time-based expectations: a slow disk raises publish->confirm latency
-- (acks=quorum + fsync=always: a confirm waits for fsyncs on a majority);
-- the p99 bound and the broker-side duplicate bound are checked like any
-- other invariant.
scenario { name = "latency_expectations", seeds = "1..2" }

cluster { replicas = 3, acks = "quorum", fsync = "always", dedup = true }
workload { producers = { rate = 100 }, consumers = { idempotent = true } }
phases { chaos = 6, heal = 2, drain = 6 }

at(2, function() disk_slow(all(), 20) end)      -- every fsync takes 20 ms
at(4, function() crash(leader()) end)
at(5, function() restart(down()) end)

expect {
  no_loss = true, no_duplicates = true, replica_agreement = true,
  latency_p99_ms = 2000,        -- publish->confirm p99 over the run, <= 2 s
  duplicate_enqueues = 0,       -- the broker never stored a message twice
  leaderless_s = 3,             -- at most 3 s without a leader during chaos (= leaderless)
  consumer_availability = 0.5,  -- deliveries in >= half the windows that had work
}
