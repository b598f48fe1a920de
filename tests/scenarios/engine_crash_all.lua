-- Every broker loses power with fsync=never: confirmed messages vanish.
scenario { name = "engine_crash_all", seeds = "1..1" }
cluster { replicas = 3, fsync = "never", acks = "quorum" }
disk { crash = "lose" }
workload { producers = { rate = 200 }, consumers = { count = 1 } }
phases { chaos = 3, heal = 1, drain = 3 }
at(2, function() crash(all()) end)
expect { no_loss = true }
