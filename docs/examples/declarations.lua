-- Every declaration, each key spelled out with its default value
-- (except where the comment says otherwise).
scenario {
  name = "declarations",
  description = "All declarations with their defaults.",
  seeds = "1..2",                 -- default "1..1"
}

cluster {
  replicas = 3, acks = "quorum", fsync = "always", election = "safe",
  dedup = true, delivery_limit = 0,
  session_timeout_ms = 2000, ack_timeout_ms = 0,
  election_timeout_ms = 300, heartbeat_ms = 50,
  pre_vote = true, check_quorum = true,
}

network {
  latency_ms = 1, jitter_ms = 0.5, jitter = "uniform",
  loss = 0, duplicate = 0, reorder = 0, corrupt = 0,
}

disk {
  fsync_ms = 1, fsync_jitter_ms = 0.2, write_us = 20,
  crash = "lose", keep = 0.5,
}

workload {
  queue = "orders", delivery_limit = 0, dead_letter = "",
  producers = { count = 1, rate = 200, poisson = false, window = 32,
                timeout_ms = 1000, retries = 10, backoff_ms = 50,
                idempotent = true, body_bytes = 64, messages = 0 },
  consumers = { count = 1, prefetch = 32, ack = "manual", processing_ms = 1,
                crash_before_ack = 0, idempotent = false },
}

phases { chaos = 5, heal = 2, drain = 8 }   -- default 20 / 5 / 15

expect {
  no_loss = true, no_duplicates = true, no_phantoms = true,
  ordering = false, replica_agreement = true,
  availability = 0.9, recovery = 5, max_unavailable = 10,
}
