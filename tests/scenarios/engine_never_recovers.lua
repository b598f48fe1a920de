-- The only broker crashes again right after heal and stays down: the run
-- never recovers (a progress violation, expected or not), and the publishes
-- still in flight at the end are counted as unknown, not lost in the sums.
scenario { name = "engine_never_recovers", seeds = "1..1" }
cluster { replicas = 1 }
workload { producers = { rate = 100 }, consumers = { count = 1 } }
phases { chaos = 4, heal = 2, drain = 3 }
at(2, function() crash(all()) end)
at(4.2, function() crash(all()) end)
expect { no_loss = true }
