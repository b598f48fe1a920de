-- swarm_nemesis: random faults of every kind the lab knows, one at a time,
-- with swarm testing (each seed enables a different subset of kinds at a
-- different intensity, as TigerBeetle's VOPR does). The strong strategy
-- (3 replicas, acks=quorum, fsync=always, safe elections, dedup, idempotent
-- producers and consumers) must keep its safety properties whatever the mix.
-- Availability is not expected: some mixes (power loss + clogs) are hard.
scenario {
  name = "swarm_nemesis",
  description = "Random swarm nemesis over every fault kind against the strong "
    .. "strategy; safety must hold on every seed.",
  seeds = "1..20",
}

cluster { replicas = 3, acks = "quorum", fsync = "always", election = "safe",
          dedup = true, ack_timeout_ms = 2000 }
workload {
  producers = { count = 2, rate = 150, idempotent = true, timeout_ms = 500, retries = 40 },
  consumers = { count = 1, ack = "manual", idempotent = true },
}
phases { chaos = 20, heal = 5, drain = 20 }

nemesis { kinds = "all", swarm = true, interval = 1.5, duration = 2 }

expect {
  no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true,
}
