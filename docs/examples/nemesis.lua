-- A random nemesis instead of (or besides) timed actions.
scenario { name = "nemesis", seeds = "1..3" }

-- ack_timeout_ms: "flaky" also drops deliveries on the consumer links; without
-- a redelivery timeout such a delivery would stay unacked until the end.
cluster { ack_timeout_ms = 1000 }
workload { producers = { rate = 100, retries = 30 }, consumers = { idempotent = true } }
phases { chaos = 12, heal = 3, drain = 12 }

nemesis {
  kinds = { "crash", "pause", "isolate_leader", "split", "flaky" },
  swarm = true,       -- each seed enables a random subset at random intensities
  interval = 2,       -- mean quiet time between faults, seconds
  duration = 1.5,     -- mean fault duration, seconds
}

expect { no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true }
