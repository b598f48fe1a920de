-- shrink_five: five replicas with acks=leader; the isolated leader's
-- confirmed suffix is lost. tests/test_scenarios_shrink.c shrinks a seed
-- whose leader is n0..n2, so the shrunk file needs only three replicas.
scenario { name = "shrink_five", seeds = "1..5" }

cluster { replicas = 5, acks = "leader", fsync = "always", election_timeout_ms = 500 }
workload {
  producers = { count = 1, rate = 200, idempotent = true, timeout_ms = 500, retries = 20 },
  consumers = { count = 1, idempotent = true },
}
phases { chaos = 8, heal = 2, drain = 10 }

at(3, function() isolate(leader()) end)
at(6, function() heal() end)

expect { no_loss = true }
