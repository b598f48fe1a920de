-- A calm run: no faults, everything must hold.
scenario { name = "engine_calm", seeds = "1..2" }
cluster { replicas = 3 }
workload { producers = { rate = 100 }, consumers = { count = 1 } }
phases { chaos = 2, heal = 1, drain = 3 }
expect { no_loss = true, no_duplicates = true, availability = 0.5 }
