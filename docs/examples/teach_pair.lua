-- A teaching pair: the same workload and faults under two strategies.
-- `chaoslab run` runs both over the seeds: the weak one must break the
-- named invariant on at least one seed, the strong one must pass every
-- expectation on every seed.
scenario { name = "teach_pair", seeds = "1..2" }

cluster { replicas = 3 }
workload {
  producers = { count = 2, rate = 300, timeout_ms = 500, retries = 20 },
  consumers = { idempotent = true },
}
phases { chaos = 8, heal = 2, drain = 12 }

at(3, function() isolate(leader()) end)    -- clients still reach it
at(6, function() heal() end)

expect { no_loss = true, replica_agreement = true }

teach {
  lesson = "acks=leader confirms before replication",
  violation = "no_loss",
  weak = { acks = "leader" },
  strong = { acks = "quorum" },
}
