-- A 1-replica cluster is down 6 s of a 10 s chaos phase: it must FAIL an
-- availability expectation of 0.9. Counting attempts could not see it (a
-- producer with a full window tries almost nothing while it waits); the
-- availability windows do.
scenario { name = "engine_outage_one_replica", seeds = "1..1" }
cluster { replicas = 1 }
workload { producers = { rate = 100 }, consumers = { count = 1 } }
phases { chaos = 10, heal = 2, drain = 5 }
at(2, function() crash(all()) end)
at(8, function() restart(down()) end)
expect { no_loss = true, availability = 0.9 }
