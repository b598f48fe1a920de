-- Without the probe, windows in which no producer had anything pending are
-- idle: here the producer is done after 0.5 s of a 3 s chaos phase.
scenario { name = "engine_no_probe", seeds = "1..1" }
cluster { replicas = 3 }
workload { probe = false, producers = { rate = 100, messages = 50 } }
phases { chaos = 3, heal = 1, drain = 2 }
