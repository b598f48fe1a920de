-- Regression for issue 9: a 5-broker cluster under a hand-written every()
-- nemesis with fsync=never stalled on 10 of 20 seeds before replication was
-- flow-controlled (rejected appends multiplied). Weak durability may lose
-- data here; what must hold is that every seed finishes with a verdict.
scenario { name = "storm_five_every", seeds = "1..20" }

cluster { replicas = 5, fsync = "never" }
workload {
  producers = { count = 2, rate = 200, idempotent = true, timeout_ms = 500, retries = 20 },
  consumers = { count = 1, ack = "manual", idempotent = true },
}
phases { chaos = 15, heal = 3, drain = 15 }

every(1.5, function() crash(random_nodes(2)) end)
every(2, function() restart(down()) end)
every(2.5, function() clog(random_nodes(2), 0.7) end)
every(3, function() split(minority()) end)
every(3.5, function() heal() end)

expect { no_loss = false, no_duplicates = false, no_phantoms = true, replica_agreement = false }
